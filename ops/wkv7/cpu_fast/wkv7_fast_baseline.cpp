// The fast WKV-7 loops for the baseline instruction set (flags in CMakeLists.txt).
#define RWKV7_ISA baseline
#include "wkv7_fast_isa.inc"
