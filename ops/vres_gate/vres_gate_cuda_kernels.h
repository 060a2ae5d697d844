// vres_gate's CUDA entry points (no LibTorch): v, v_first, v_in, out and their gradients
// [rows = B*T, C], v0 and dv0 [C], contiguous of `dtype`; `partial` float scratch.
#pragma once
#include <cuda_runtime_api.h>

#include "../cuda_dtype.h"

namespace rwkv7_cuda {

long vres_gate_partial_floats(long rows, int C);

cudaError_t vres_gate_forward(DType dtype, long rows, int C, const void* v, const void* v_first, const void* v_in,
                              const void* v0, void* out, cudaStream_t stream);

cudaError_t vres_gate_backward(DType dtype, long rows, int C, const void* v, const void* v_first, const void* v_in,
                               const void* v0, const void* dout, void* dv, void* dv_first, void* dv_in, void* dv0,
                               float* partial, cudaStream_t stream);

}  // namespace rwkv7_cuda
