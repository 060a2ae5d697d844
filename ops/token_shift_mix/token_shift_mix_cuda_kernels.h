// token_shift_mix's CUDA entry points (no LibTorch): x [B, T, C], mix [n, C], out [n, B, T, C],
// all contiguous of `dtype`; `partial` is float scratch of token_shift_mix_partial_floats().
#pragma once
#include <cuda_runtime_api.h>

#include "../cuda_dtype.h"

namespace rwkv7_cuda {

long token_shift_mix_partial_floats(int B, int T, int C, int n);

cudaError_t token_shift_mix_forward(DType dtype, int B, int T, int C, int n, const void* x, const void* mix,
                                    void* out, cudaStream_t stream);

cudaError_t token_shift_mix_backward(DType dtype, int B, int T, int C, int n, const void* x, const void* mix,
                                     const void* dout, void* dx, void* dmix, float* partial, cudaStream_t stream);

}  // namespace rwkv7_cuda
