// kk_pre's CUDA entry points (no LibTorch): k, a_in and the outputs [rows = B*T, C]; a0, k_k,
// k_a and their gradients [C]; all contiguous of `dtype`; `partial` float scratch.
#pragma once
#include <cuda_runtime_api.h>

#include "../cuda_dtype.h"
#include "kk_pre_launch_args.h"

namespace rwkv7_cuda {

long kk_pre_partial_floats(long rows, int C);

cudaError_t kk_pre_forward(DType dtype, long rows, int C, int H, const KkPreForwardArgs& args, cudaStream_t stream);

// `partial`: float [kk_pre_partial_floats(rows, C)] of scratch.
cudaError_t kk_pre_backward(DType dtype, long rows, int C, int H, const KkPreBackwardArgs& args, float* partial,
                            cudaStream_t stream);

}  // namespace rwkv7_cuda
