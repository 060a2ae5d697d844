// What this processor runs, for the instruction sets the fast CPU loops are built for. Plain C++
// (the ThreadSanitizer tests use it without LibTorch); never include it in a per-ISA file.
#pragma once

namespace rwkv7_ops {

inline bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

inline bool cpu_has_avx512() {  // the subsets the -mavx512* flags of CMakeLists.txt enable
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}

}  // namespace rwkv7_ops
