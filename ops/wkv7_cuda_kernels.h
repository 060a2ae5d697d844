// The pure CUDA side of WKV-7: no LibTorch here, so that `rwkv7_cuda_kernels` builds wherever
// nvcc exists. ops/wkv7_cuda.cpp wraps these launchers as the op's CUDA kernels.
#pragma once
#include <cuda_runtime_api.h>

namespace rwkv7_cuda {

constexpr int kHeadSize = 64;  // N: one thread per channel of a head
constexpr int kChunk = 16;     // the forward saves the state every kChunk steps

enum class DType { kFloat32, kBFloat16 };

// Inputs r, w, k, v, a, b and y are contiguous [B, T, H, N] of `dtype`. T % kChunk == 0.
// s:  float [B, H, T / kChunk, N, N], the state after each chunk (stored transposed)
// sa: float [B, T, H, N], S_{t-1} a_t
cudaError_t wkv7_forward(DType dtype, int B, int T, int H, const void* r, const void* w,
                         const void* k, const void* v, const void* a, const void* b, void* y,
                         float* s, float* sa, cudaStream_t stream);

// dy in, six gradients out, all [B, T, H, N] of `dtype`; s and sa from wkv7_forward.
cudaError_t wkv7_backward(DType dtype, int B, int T, int H, const void* r, const void* w,
                          const void* k, const void* v, const void* a, const void* b,
                          const void* dy, const float* s, const float* sa, void* dr, void* dw,
                          void* dk, void* dv, void* da, void* db, cudaStream_t stream);

}  // namespace rwkv7_cuda
