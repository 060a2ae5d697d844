// lnx_rkvres_xg's CUDA entry points for nvcc: the real CUDA environment, the kernels, dtype dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "lnx_rkvres_xg_cuda_kernels.h"
#include "lnx_rkvres_xg_kernels.cuh"

namespace rwkv7_cuda {

long lnx_rkvres_xg_partial_floats(long rows, int C) { return long(head_row_blocks(rows)) * 3 * C; }

cudaError_t lnx_rkvres_xg_forward(DType dtype, long rows, int C, int H, float eps, const void* y, const void* r,
                                  const void* k, const void* v, const void* r_k, const void* g, const void* ln_w,
                                  const void* ln_b, void* out, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_lnx_rkvres_xg_forward<__nv_bfloat16>(rows, C, H, eps, y, r, k, v, r_k, g, ln_w, ln_b, out,
                                                           stream)
             : launch_lnx_rkvres_xg_forward<float>(rows, C, H, eps, y, r, k, v, r_k, g, ln_w, ln_b, out, stream);
}

cudaError_t lnx_rkvres_xg_backward(DType dtype, long rows, int C, int H, float eps, const void* y, const void* r,
                                   const void* k, const void* v, const void* r_k, const void* g, const void* ln_w,
                                   const void* ln_b, const void* dout, void* dy, void* dr, void* dk, void* dv,
                                   void* dr_k, void* dg, void* dln_w, void* dln_b, float* partial,
                                   cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_lnx_rkvres_xg_backward<__nv_bfloat16>(rows, C, H, eps, y, r, k, v, r_k, g, ln_w, ln_b, dout,
                                                            dy, dr, dk, dv, dr_k, dg, dln_w, dln_b, partial, stream)
             : launch_lnx_rkvres_xg_backward<float>(rows, C, H, eps, y, r, k, v, r_k, g, ln_w, ln_b, dout, dy, dr,
                                                    dk, dv, dr_k, dg, dln_w, dln_b, partial, stream);
}

}  // namespace rwkv7_cuda
