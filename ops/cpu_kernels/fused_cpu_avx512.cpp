// The fused ops' CPU loops for the avx512 instruction set (flags in CMakeLists.txt).
#define RWKV7_ISA avx512
#include "fused_cpu_isa.inc"
