// kk_pre's CUDA entry points (no LibTorch): k, a_in and the outputs [rows = B*T, C]; a0, k_k,
// k_a and their gradients [C]; all contiguous of `dtype`; `partial` float scratch.
#pragma once
#include <cuda_runtime_api.h>

#include "../cuda_dtype.h"

namespace rwkv7_cuda {

long kk_pre_partial_floats(long rows, int C);

cudaError_t kk_pre_forward(DType dtype, long rows, int C, int H, const void* k, const void* a_in, const void* a0,
                           const void* k_k, const void* k_a, void* k_out, void* neg_kk, void* kk_a,
                           cudaStream_t stream);

cudaError_t kk_pre_backward(DType dtype, long rows, int C, int H, const void* k, const void* a_in, const void* a0,
                            const void* k_k, const void* k_a, const void* dk_out, const void* dneg,
                            const void* dkka, void* dk, void* da_in, void* da0, void* dk_k, void* dk_a,
                            float* partial, cudaStream_t stream);

}  // namespace rwkv7_cuda
