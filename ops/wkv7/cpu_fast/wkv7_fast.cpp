// Runs the fast WKV-7 kernel of the instruction set in use (ops/cpu_kernels/cpu_isa.h) over (batch, head)
// pairs in parallel, each thread with its own scratch memory.
#include "wkv7_fast.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include "../../cpu_kernels/cpu_isa.h"

#include <atomic>
#include <cstring>
#include <vector>

namespace rwkv7_ops::wkv7_fast {

namespace {

using Range = void (*)(const Problem&, int64_t, int64_t, float*);

struct Loops {
  Range forward, backward;
};

// the named instruction set's loops, or by default the one in use (cpu_isa.h)
Loops chosen(const char* name) {
  switch (name != nullptr ? cpu_isa_named(name) : cpu_isa_in_use()) {
    case CpuIsa::kAvx512: return {&avx512::forward, &avx512::backward};
    case CpuIsa::kAvx2: return {&avx2::forward, &avx2::backward};
    case CpuIsa::kBaseline: break;
  }
  return {&baseline::forward, &baseline::backward};
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
const char* isa_in_use() { return cpu_isa_name(cpu_isa_in_use()); }

int64_t threads_over(int64_t items) {
  std::atomic<uint64_t> seen{0};  // bit t: thread t ran a part
  at::parallel_for(0, items, 1, [&](int64_t, int64_t) { seen |= uint64_t{1} << (at::get_thread_num() % 64); });
  return __builtin_popcountll(seen.load());
}

bool isa_available(const char* name) {
  for (CpuIsa isa : kEveryCpuIsa)
    if (std::strcmp(cpu_isa_name(isa), name) == 0) return cpu_isa_available(isa);
  return false;
}

}  // namespace rwkv7_ops::wkv7_fast
