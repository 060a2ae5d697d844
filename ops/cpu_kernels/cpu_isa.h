// The instruction set the fast CPU kernels run: each is compiled once per set (baseline x86-64,
// AVX2+FMA, AVX-512) and the widest one this processor has is chosen when first asked, the way
// ATen builds its own CPU kernels, so one binary runs on any x86-64. The environment variable
// RWKV7_CPU_ISA (baseline, avx2, avx512) picks one instead.
#pragma once

namespace rwkv7_ops {

enum class CpuIsa { kBaseline, kAvx2, kAvx512 };
inline constexpr CpuIsa kEveryCpuIsa[] = {CpuIsa::kBaseline, CpuIsa::kAvx2, CpuIsa::kAvx512};  // narrow to wide

const char* cpu_isa_name(CpuIsa isa);
bool cpu_isa_available(CpuIsa isa);
// The set called `name`; an unknown name or a set this processor lacks is refused (one line).
CpuIsa cpu_isa_named(const char* name);
// RWKV7_CPU_ISA's set, else the widest available; a ScopedCpuIsa's while one lives.
CpuIsa cpu_isa_in_use();

// Tests: every fast kernel runs `isa` while this lives (set from one thread; nests).
class ScopedCpuIsa {
 public:
  explicit ScopedCpuIsa(CpuIsa isa);
  ~ScopedCpuIsa();
  ScopedCpuIsa(const ScopedCpuIsa&) = delete;
  ScopedCpuIsa& operator=(const ScopedCpuIsa&) = delete;

 private:
  int previous_;  // the set in use before (restored at the end), or -1: the default
};

}  // namespace rwkv7_ops
