// cross_entropy_l2wrap's CUDA entry points (no LibTorch): logits and dlogits [M, V] contiguous
// of `dtype`, targets int64 [M], row_loss float [M] scratch, loss and dloss one float each.
#pragma once
#include <cuda_runtime_api.h>

#include "../cuda_dtype.h"

namespace rwkv7_cuda {

cudaError_t cross_entropy_l2wrap_forward(DType dtype, long M, int V, const void* logits, const long long* targets,
                                         float* row_loss, float* loss, cudaStream_t stream);

cudaError_t cross_entropy_l2wrap_backward(DType dtype, long M, int V, const void* logits, const long long* targets,
                                          const float* dloss, void* dlogits, cudaStream_t stream);

}  // namespace rwkv7_cuda
