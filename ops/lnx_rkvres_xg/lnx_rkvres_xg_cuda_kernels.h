// lnx_rkvres_xg's CUDA entry points (no LibTorch): y, r, k, v, g, dout and their gradients
// [rows = B*T, C]; r_k [H, N] = [C] and ln_w, ln_b [C] and their gradients; all contiguous of
// `dtype`; `partial` float scratch.
#pragma once
#include <cuda_runtime_api.h>

#include "../cuda_dtype.h"

namespace rwkv7_cuda {

long lnx_rkvres_xg_partial_floats(long rows, int C);

cudaError_t lnx_rkvres_xg_forward(DType dtype, long rows, int C, int H, float eps, const void* y, const void* r,
                                  const void* k, const void* v, const void* r_k, const void* g, const void* ln_w,
                                  const void* ln_b, void* out, cudaStream_t stream);

cudaError_t lnx_rkvres_xg_backward(DType dtype, long rows, int C, int H, float eps, const void* y, const void* r,
                                   const void* k, const void* v, const void* r_k, const void* g, const void* ln_w,
                                   const void* ln_b, const void* dout, void* dy, void* dr, void* dk, void* dv,
                                   void* dr_k, void* dg, void* dln_w, void* dln_b, float* partial,
                                   cudaStream_t stream);

}  // namespace rwkv7_cuda
