#include "rwkv7/train/flops.h"

#include <malloc.h>
#include <sys/resource.h>

#include <cstdio>
#include <string>

#ifdef RWKV7_HAS_CUDA_OP
#include <ATen/cuda/CUDAContextLight.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "rwkv7/train/cpu_block_cache.h"

namespace rwkv7 {

double training_flops_per_token(const ModelShape& s) {
  const double C = double(s.n_embd), F = double(s.dim_ffn), V = double(s.vocab_size), N = double(s.head_size);
  const double lora = s.d_decay + s.d_aaa + s.d_mv + s.d_gate;  // each: C x d down, d x C up
  const double per_layer = 4 * C * C + 2 * C * lora + 2 * C * F;
  return 6 * (s.n_layer * per_layer + C * V) + s.n_layer * 24 * C * N;
}

double peak_tflops(const c10::Device& device, Precision precision, double configured, std::string* name) {
  *name = device.is_cuda() ? "cuda" : "cpu";
#ifdef RWKV7_HAS_CUDA_OP
  if (device.is_cuda()) *name = at::cuda::getDeviceProperties(device.index() < 0 ? 0 : device.index())->name;
#endif
  if (configured > 0) return configured;
  if (!device.is_cuda() || precision != Precision::bf16) return 0;
  const struct {
    const char* part;
    double tflops;
  } known[] = {{"H200", 989}, {"H100", 989}, {"A100", 312}, {"4090", 165}};
  for (const auto& k : known)
    if (name->find(k.part) != std::string::npos) return k.tflops;
  return 0;
}

namespace {
// A "Name:   123 kB" line of /proc/self/status, in bytes; -1 if absent.
int64_t proc_status_bytes(const char* name) {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long long kib = -1;
  const std::string format = std::string(name) + ": %lld kB";
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, format.c_str(), &kib) == 1) break;
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}
}  // namespace

int64_t current_memory_bytes(const c10::Device& device) {
#ifdef RWKV7_HAS_CUDA_OP
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return stats.allocated_bytes[0].current;
  }
#endif
  (void)device;
  return proc_status_bytes("VmRSS");
}

int64_t peak_memory_bytes(const c10::Device& device) {
#ifdef RWKV7_HAS_CUDA_OP
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return stats.allocated_bytes[0].peak;  // [0]: the aggregate over small and large pools
  }
#endif
  (void)device;
  // VmHWM, the RSS's high-water mark (reset by reset_peak_memory); else the lifetime's
  if (const int64_t hwm = proc_status_bytes("VmHWM"); hwm >= 0) return hwm;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return int64_t(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

void reset_peak_memory(const c10::Device& device) {
#ifdef RWKV7_HAS_CUDA_OP
  if (device.is_cuda()) {
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
    return;
  }
#endif
  (void)device;
  release_idle_cpu_blocks();
  malloc_trim(0);
  if (std::FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

}  // namespace rwkv7
