// Which instruction sets this processor runs, and the one in use.
#include "cpu_isa.h"

#include "cpu_features.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace rwkv7_ops {

namespace {

std::atomic<int> g_scoped{-1};  // a ScopedCpuIsa's set, or -1

CpuIsa chosen_once() {
  static const CpuIsa isa = [] {
    const char* want = std::getenv("RWKV7_CPU_ISA");
    if (want != nullptr && *want != '\0') return cpu_isa_named(want);
    CpuIsa widest = CpuIsa::kBaseline;
    for (CpuIsa candidate : kEveryCpuIsa)
      if (cpu_isa_available(candidate)) widest = candidate;
    return widest;
  }();
  return isa;
}

}  // namespace

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kBaseline: return "baseline";
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kAvx512: return "avx512";
  }
  return "?";
}

bool cpu_isa_available(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kBaseline: return true;
    case CpuIsa::kAvx2: return cpu_has_avx2_fma();
    case CpuIsa::kAvx512: return cpu_has_avx512();
  }
  return false;
}

CpuIsa cpu_isa_named(const char* name) {
  for (CpuIsa isa : kEveryCpuIsa)
    if (std::strcmp(cpu_isa_name(isa), name) == 0) {
      TORCH_CHECK(cpu_isa_available(isa), "CPU kernels: this processor cannot run the ", name, " instruction set");
      return isa;
    }
  TORCH_CHECK(false, "CPU kernels: instruction set '", name, "' is not baseline, avx2 or avx512 (RWKV7_CPU_ISA?)");
}

CpuIsa cpu_isa_in_use() {
  const int scoped = g_scoped.load();
  return scoped >= 0 ? static_cast<CpuIsa>(scoped) : chosen_once();
}

ScopedCpuIsa::ScopedCpuIsa(CpuIsa isa) {
  TORCH_CHECK(cpu_isa_available(isa), "CPU kernels: this processor cannot run the ", cpu_isa_name(isa),
              " instruction set");
  previous_ = g_scoped.exchange(static_cast<int>(isa));
}
ScopedCpuIsa::~ScopedCpuIsa() { g_scoped = previous_; }

}  // namespace rwkv7_ops
