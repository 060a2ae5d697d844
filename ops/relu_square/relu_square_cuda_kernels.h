// relu_square's CUDA entry points (no LibTorch): n contiguous elements of `dtype`.
#pragma once
#include <cuda_runtime_api.h>

#include "../cuda_dtype.h"

namespace rwkv7_cuda {

cudaError_t relu_square_forward(DType dtype, long n, const void* x, void* out, cudaStream_t stream);
cudaError_t relu_square_backward(DType dtype, long n, const void* x, const void* dout, void* dx, cudaStream_t stream);

}  // namespace rwkv7_cuda
