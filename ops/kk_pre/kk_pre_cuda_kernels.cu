// kk_pre's CUDA entry points for nvcc: the real CUDA environment, the kernels, dtype dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "kk_pre_cuda_kernels.h"
#include "kk_pre_kernels.cuh"

namespace rwkv7_cuda {

long kk_pre_partial_floats(long rows, int C) { return long(head_row_blocks(rows)) * 3 * C; }

cudaError_t kk_pre_forward(DType dtype, long rows, int C, int H, const void* k, const void* a_in, const void* a0,
                           const void* k_k, const void* k_a, void* k_out, void* neg_kk, void* kk_a,
                           cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_kk_pre_forward<__nv_bfloat16>(rows, C, H, k, a_in, a0, k_k, k_a, k_out, neg_kk, kk_a, stream)
             : launch_kk_pre_forward<float>(rows, C, H, k, a_in, a0, k_k, k_a, k_out, neg_kk, kk_a, stream);
}

cudaError_t kk_pre_backward(DType dtype, long rows, int C, int H, const void* k, const void* a_in, const void* a0,
                            const void* k_k, const void* k_a, const void* dk_out, const void* dneg,
                            const void* dkka, void* dk, void* da_in, void* da0, void* dk_k, void* dk_a,
                            float* partial, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_kk_pre_backward<__nv_bfloat16>(rows, C, H, k, a_in, a0, k_k, k_a, dk_out, dneg, dkka, dk,
                                                     da_in, da0, dk_k, dk_a, partial, stream)
             : launch_kk_pre_backward<float>(rows, C, H, k, a_in, a0, k_k, k_a, dk_out, dneg, dkka, dk, da_in, da0,
                                             dk_k, dk_a, partial, stream);
}

}  // namespace rwkv7_cuda
