// kk_pre's CUDA entry points for nvcc: the real CUDA environment, the kernels, dtype dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "kk_pre_cuda_kernels.h"
#include "kk_pre_kernels.cuh"

namespace rwkv7_cuda {

long kk_pre_partial_floats(long rows, int C) { return long(head_row_blocks(rows)) * 3 * C; }

cudaError_t kk_pre_forward(DType dtype, long rows, int C, int H, const KkPreForwardArgs& args, cudaStream_t stream) {
  return dtype == DType::kBFloat16 ? launch_kk_pre_forward<__nv_bfloat16>(rows, C, H, args, stream)
                                   : launch_kk_pre_forward<float>(rows, C, H, args, stream);
}

cudaError_t kk_pre_backward(DType dtype, long rows, int C, int H, const KkPreBackwardArgs& args, float* partial,
                            cudaStream_t stream) {
  return dtype == DType::kBFloat16 ? launch_kk_pre_backward<__nv_bfloat16>(rows, C, H, args, partial, stream)
                                   : launch_kk_pre_backward<float>(rows, C, H, args, partial, stream);
}

}  // namespace rwkv7_cuda
