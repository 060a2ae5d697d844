// The fast WKV-7 loops for the avx512 instruction set (flags in CMakeLists.txt).
#define RWKV7_ISA avx512
#include "wkv7_fast_isa.inc"
