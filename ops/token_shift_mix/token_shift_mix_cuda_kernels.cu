// token_shift_mix's CUDA entry points for nvcc: the real CUDA environment, the kernels, dtype dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "token_shift_mix_cuda_kernels.h"
#include "token_shift_mix_kernels.cuh"

namespace rwkv7_cuda {

long token_shift_mix_partial_floats(int B, int T, int C, int n) {
  return long(token_shift_mix_partials(long(B) * T)) * n * C;
}

cudaError_t token_shift_mix_forward(DType dtype, int B, int T, int C, int n, const void* x, const void* mix,
                                    void* out, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_token_shift_mix_forward<__nv_bfloat16>(B, T, C, n, x, mix, out, stream)
             : launch_token_shift_mix_forward<float>(B, T, C, n, x, mix, out, stream);
}

cudaError_t token_shift_mix_backward(DType dtype, int B, int T, int C, int n, const void* x, const void* mix,
                                     const void* dout, void* dx, void* dmix, float* partial, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_token_shift_mix_backward<__nv_bfloat16>(B, T, C, n, x, mix, dout, dx, dmix, partial, stream)
             : launch_token_shift_mix_backward<float>(B, T, C, n, x, mix, dout, dx, dmix, partial, stream);
}

}  // namespace rwkv7_cuda
