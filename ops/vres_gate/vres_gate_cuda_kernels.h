// vres_gate's CUDA entry points (no LibTorch): v, v_first, v_in, out and their gradients
// [rows = B*T, C], v0 and dv0 [C], contiguous of `dtype`; `partial` float scratch.
#pragma once
#include <cuda_runtime_api.h>

#include "../cuda_dtype.h"
#include "vres_gate_launch_args.h"

namespace rwkv7_cuda {

long vres_gate_partial_floats(long rows, int C);

cudaError_t vres_gate_forward(DType dtype, long rows, int C, const VresGateForwardArgs& args, cudaStream_t stream);

// `partial`: float [vres_gate_partial_floats(rows, C)] of scratch.
cudaError_t vres_gate_backward(DType dtype, long rows, int C, const VresGateBackwardArgs& args, float* partial,
                               cudaStream_t stream);

}  // namespace rwkv7_cuda
