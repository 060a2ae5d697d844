// The fused ops' CPU loops for the baseline instruction set (flags in CMakeLists.txt).
#define RWKV7_ISA baseline
#include "fused_cpu_isa.inc"
