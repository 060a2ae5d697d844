// lnx_rkvres_xg's CUDA entry points for nvcc: the real CUDA environment, the kernels, dtype dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "lnx_rkvres_xg_cuda_kernels.h"
#include "lnx_rkvres_xg_kernels.cuh"

namespace rwkv7_cuda {

long lnx_rkvres_xg_partial_floats(long rows, int C) { return long(head_row_blocks(rows)) * 3 * C; }

cudaError_t lnx_rkvres_xg_forward(DType dtype, long rows, int C, int H, float eps,
                                  const LnxRkvresXgForwardArgs& args, cudaStream_t stream) {
  return dtype == DType::kBFloat16 ? launch_lnx_rkvres_xg_forward<__nv_bfloat16>(rows, C, H, eps, args, stream)
                                   : launch_lnx_rkvres_xg_forward<float>(rows, C, H, eps, args, stream);
}

cudaError_t lnx_rkvres_xg_backward(DType dtype, long rows, int C, int H, float eps,
                                   const LnxRkvresXgBackwardArgs& args, float* partial, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_lnx_rkvres_xg_backward<__nv_bfloat16>(rows, C, H, eps, args, partial, stream)
             : launch_lnx_rkvres_xg_backward<float>(rows, C, H, eps, args, partial, stream);
}

}  // namespace rwkv7_cuda
