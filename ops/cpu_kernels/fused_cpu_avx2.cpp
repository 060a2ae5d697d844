// The fused ops' CPU loops for the avx2 instruction set (flags in CMakeLists.txt).
#define RWKV7_ISA avx2
#include "fused_cpu_isa.inc"
