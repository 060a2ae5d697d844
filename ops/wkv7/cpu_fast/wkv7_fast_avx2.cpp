// The fast WKV-7 loops for the avx2 instruction set (flags in CMakeLists.txt).
#define RWKV7_ISA avx2
#include "wkv7_fast_isa.inc"
