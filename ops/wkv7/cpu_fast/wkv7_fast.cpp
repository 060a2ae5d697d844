// Chooses the instruction set of the fast WKV-7 kernel once, and runs it over (batch, head)
// pairs in parallel, each thread with its own scratch memory.
#include "wkv7_fast.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace rwkv7_ops::wkv7_fast {

namespace {

using Range = void (*)(const Problem&, int64_t, int64_t, float*);

struct Isa {
  const char* name;
  Range forward, backward;
  bool available;
};

const std::vector<Isa>& all_isas() {
  static const std::vector<Isa> isas = [] {
    __builtin_cpu_init();
    const bool avx2_here = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512_here = avx2_here && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    return std::vector<Isa>{{"baseline", &baseline::forward, &baseline::backward, true},
                            {"avx2", &avx2::forward, &avx2::backward, avx2_here},
                            {"avx512", &avx512::forward, &avx512::backward, avx512_here}};
  }();
  return isas;
}

const Isa& named(const char* name) {
  for (const Isa& isa : all_isas())
    if (std::strcmp(isa.name, name) == 0) {
      TORCH_CHECK(isa.available, "WKV-7 CPU kernel: this processor cannot run the ", name, " instruction set");
      return isa;
    }
  TORCH_CHECK(false, "WKV-7 CPU kernel: instruction set '", name, "' is not baseline, avx2 or avx512 (RWKV7_CPU_ISA?)");
}

const Isa& chosen(const char* name) {
  if (name != nullptr) return named(name);
  static const Isa& best = [] () -> const Isa& {
    const char* want = std::getenv("RWKV7_CPU_ISA");
    if (want != nullptr && *want != '\0') return named(want);
    const Isa* pick = &all_isas()[0];
    for (const Isa& isa : all_isas())
      if (isa.available) pick = &isa;  // (listed from the narrowest to the widest)
    return *pick;
  }();
  return best;
}

void run(const Problem& p, Range range) {
  const int64_t floats = workspace_floats(p.N);
  at::parallel_for(0, p.B * p.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> workspace(static_cast<size_t>(floats));
    range(p, begin, end, workspace.data());
  });
}

}  // namespace

void run_forward(const Problem& p, const char* isa) { run(p, chosen(isa).forward); }
void run_backward(const Problem& p, const char* isa) { run(p, chosen(isa).backward); }
const char* isa_in_use() { return chosen(nullptr).name; }

int64_t threads_over(int64_t items) {
  std::atomic<uint64_t> seen{0};  // bit t: thread t ran a part
  at::parallel_for(0, items, 1, [&](int64_t, int64_t) { seen |= uint64_t{1} << (at::get_thread_num() % 64); });
  return __builtin_popcountll(seen.load());
}

bool isa_available(const char* name) {
  for (const Isa& isa : all_isas())
    if (std::strcmp(isa.name, name) == 0) return isa.available;
  return false;
}

}  // namespace rwkv7_ops::wkv7_fast
