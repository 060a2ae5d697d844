// vres_gate's CUDA entry points for nvcc: the real CUDA environment, the kernels, dtype dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "vres_gate_cuda_kernels.h"
#include "vres_gate_kernels.cuh"

namespace rwkv7_cuda {

long vres_gate_partial_floats(long rows, int C) { return long(vres_gate_partials(rows)) * C; }

cudaError_t vres_gate_forward(DType dtype, long rows, int C, const VresGateForwardArgs& args, cudaStream_t stream) {
  return dtype == DType::kBFloat16 ? launch_vres_gate_forward<__nv_bfloat16>(rows, C, args, stream)
                                   : launch_vres_gate_forward<float>(rows, C, args, stream);
}

cudaError_t vres_gate_backward(DType dtype, long rows, int C, const VresGateBackwardArgs& args, float* partial,
                               cudaStream_t stream) {
  return dtype == DType::kBFloat16 ? launch_vres_gate_backward<__nv_bfloat16>(rows, C, args, partial, stream)
                                   : launch_vres_gate_backward<float>(rows, C, args, partial, stream);
}

}  // namespace rwkv7_cuda
