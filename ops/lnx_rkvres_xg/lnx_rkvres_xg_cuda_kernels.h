// lnx_rkvres_xg's CUDA entry points (no LibTorch): y, r, k, v, g, dout and their gradients
// [rows = B*T, C]; r_k [H, N] = [C] and ln_w, ln_b [C] and their gradients; all contiguous of
// `dtype`; `partial` float scratch.
#pragma once
#include <cuda_runtime_api.h>

#include "../cuda_dtype.h"
#include "lnx_rkvres_xg_launch_args.h"

namespace rwkv7_cuda {

long lnx_rkvres_xg_partial_floats(long rows, int C);

cudaError_t lnx_rkvres_xg_forward(DType dtype, long rows, int C, int H, float eps,
                                  const LnxRkvresXgForwardArgs& args, cudaStream_t stream);

// `partial`: float [lnx_rkvres_xg_partial_floats(rows, C)] of scratch.
cudaError_t lnx_rkvres_xg_backward(DType dtype, long rows, int C, int H, float eps,
                                   const LnxRkvresXgBackwardArgs& args, float* partial, cudaStream_t stream);

}  // namespace rwkv7_cuda
