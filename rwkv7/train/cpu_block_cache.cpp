#include "rwkv7/train/cpu_block_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace rwkv7 {
namespace {

constexpr size_t kMinCachedBytes = size_t(1) << 20;  // smaller blocks: LibTorch's allocator
constexpr size_t kPageBytes = size_t(2) << 20;       // an x86-64 huge page: the size class and alignment

size_t size_class(size_t n) { return (n + kPageBytes - 1) / kPageBytes * kPageBytes; }

// Every block, small or large, carries the same deleter with data == context, so that
// raw_allocate / raw_deallocate (which some of LibTorch uses) work as with the default allocator.
class CpuBlockCache final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    void* p = n < kMinCachedBytes ? c10::alloc_cpu(n) : take(size_class(n));
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  static CpuBlockCache& instance() {
    static CpuBlockCache* cache = new CpuBlockCache();  // never destroyed: tensors may outlive main
    return *cache;
  }

  void release_idle() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_idle_locked();
  }

  void install() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (installed_) return;
    // priority above the default allocator's 0, so that nothing registered later at 0 replaces it
    c10::SetCPUAllocator(this, /*priority=*/1);
    installed_ = true;
  }

  bool installed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return installed_;
  }

  CpuCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // the smallest idle block that fits, if it wastes at most a quarter of itself
      auto it = idle_.lower_bound(bytes);
      if (it != idle_.end() && it->first - bytes <= it->first / 4) {
        const size_t have = it->first;
        void* p = it->second.back();
        it->second.pop_back();
        if (it->second.empty()) idle_.erase(it);
        live_[p] = have;
        stats_.idle_bytes -= static_cast<int64_t>(have);
        stats_.in_use_bytes += static_cast<int64_t>(have);
        ++stats_.hits;
        note_peak();
        return p;
      }
      ++stats_.misses;
      if (stats_.idle_bytes > stats_.peak_in_use_bytes) release_idle_locked();
    }
    void* p = fresh(bytes);
    if (p == nullptr) {  // the system is short: give the idle blocks back and try once more
      release_idle();
      p = fresh(bytes);
    }
    if (p == nullptr) throw std::bad_alloc();
    std::lock_guard<std::mutex> lock(mutex_);
    live_[p] = bytes;
    stats_.in_use_bytes += static_cast<int64_t>(bytes);
    note_peak();
    return p;
  }

  void note_peak() {
    if (stats_.in_use_bytes > stats_.peak_in_use_bytes) stats_.peak_in_use_bytes = stats_.in_use_bytes;
  }

  static void* fresh(size_t bytes) {
    void* p = nullptr;
    if (posix_memalign(&p, kPageBytes, bytes) != 0) return nullptr;
    madvise(p, bytes, MADV_HUGEPAGE);  // fewer, larger page faults the first time it is touched
    return p;
  }

  static void release(void* p) {
    if (p == nullptr) return;
    CpuBlockCache& c = instance();
    {
      std::lock_guard<std::mutex> lock(c.mutex_);
      auto it = c.live_.find(p);
      if (it != c.live_.end()) {
        c.idle_[it->second].push_back(p);
        c.stats_.in_use_bytes -= static_cast<int64_t>(it->second);
        c.stats_.idle_bytes += static_cast<int64_t>(it->second);
        c.live_.erase(it);
        return;
      }
    }
    c10::free_cpu(p);  // a small block
  }

  void release_idle_locked() {
    for (auto& [bytes, blocks] : idle_)
      for (void* p : blocks) std::free(p);
    idle_.clear();
    stats_.idle_bytes = 0;
  }

  std::mutex mutex_;
  std::unordered_map<void*, size_t> live_;                 // handed-out large block -> its size class
  std::map<size_t, std::vector<void*>> idle_;              // size class -> freed blocks
  CpuCacheStats stats_;
  bool installed_ = false;
};

}  // namespace

void install_cpu_block_cache() { CpuBlockCache::instance().install(); }

bool cpu_block_cache_installed() { return CpuBlockCache::instance().installed(); }

void release_idle_cpu_blocks() { CpuBlockCache::instance().release_idle(); }

CpuCacheStats cpu_block_cache_stats() { return CpuBlockCache::instance().stats(); }

}  // namespace rwkv7
