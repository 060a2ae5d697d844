// relu_square's CUDA entry points for nvcc: the real CUDA environment, the kernels, dtype dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "relu_square_cuda_kernels.h"
#include "relu_square_kernels.cuh"

namespace rwkv7_cuda {

cudaError_t relu_square_forward(DType dtype, long n, const void* x, void* out, cudaStream_t stream) {
  return dtype == DType::kBFloat16 ? launch_relu_square_forward<__nv_bfloat16>(n, x, out, stream)
                                   : launch_relu_square_forward<float>(n, x, out, stream);
}

cudaError_t relu_square_backward(DType dtype, long n, const void* x, const void* dout, void* dx, cudaStream_t stream) {
  return dtype == DType::kBFloat16 ? launch_relu_square_backward<__nv_bfloat16>(n, x, dout, dx, stream)
                                   : launch_relu_square_backward<float>(n, x, dout, dx, stream);
}

}  // namespace rwkv7_cuda
