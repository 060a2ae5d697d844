// cross_entropy_l2wrap's CUDA entry points for nvcc: the real CUDA environment, the kernels, dtype dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "cross_entropy_l2wrap_cuda_kernels.h"
#include "cross_entropy_l2wrap_kernels.cuh"

namespace rwkv7_cuda {

cudaError_t cross_entropy_l2wrap_forward(DType dtype, long M, int V, const void* logits, const long long* targets,
                                         float* row_loss, float* loss, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_cross_entropy_l2wrap_forward<__nv_bfloat16>(M, V, logits, targets, row_loss, loss, stream)
             : launch_cross_entropy_l2wrap_forward<float>(M, V, logits, targets, row_loss, loss, stream);
}

cudaError_t cross_entropy_l2wrap_backward(DType dtype, long M, int V, const void* logits, const long long* targets,
                                          const float* dloss, void* dlogits, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_cross_entropy_l2wrap_backward<__nv_bfloat16>(M, V, logits, targets, dloss, dlogits, stream)
             : launch_cross_entropy_l2wrap_backward<float>(M, V, logits, targets, dloss, dlogits, stream);
}

}  // namespace rwkv7_cuda
