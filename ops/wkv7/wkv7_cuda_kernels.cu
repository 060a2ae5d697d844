// WKV-7's CUDA entry points for nvcc: the real CUDA environment, then the kernels
// (wkv7_kernels.cuh, which the CPU emulation tests compile too), then dispatch on dtype, head
// size and decay input.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "wkv7_cuda_kernels.h"
#include "wkv7_kernels.cuh"

namespace rwkv7_cuda {
namespace {

template <typename E, bool kRaw>
cudaError_t forward_for_head_size(int B, int T, int H, int N, const void* r, const void* w, const void* k,
                                  const void* v, const void* a, const void* b, void* y, float* s, float* sa,
                                  cudaStream_t stream, const float* s0, long s0_stride) {
  if (N == 64) return launch_forward<E, 64, kRaw>(B, T, H, r, w, k, v, a, b, y, s, sa, stream, s0, s0_stride);
  if (N == 128) return launch_forward<E, 128, kRaw>(B, T, H, r, w, k, v, a, b, y, s, sa, stream, s0, s0_stride);
  return cudaErrorInvalidValue;
}

template <typename E, bool kRaw>
cudaError_t backward_for_head_size(int B, int T, int H, int N, const void* r, const void* w, const void* k,
                                   const void* v, const void* a, const void* b, const void* dy, const float* s,
                                   const float* sa, void* dr, void* dw, void* dk, void* dv, void* da, void* db,
                                   cudaStream_t stream, float* ds0) {
  if (N == 64)
    return launch_backward<E, 64, kRaw>(B, T, H, r, w, k, v, a, b, dy, s, sa, dr, dw, dk, dv, da, db, stream, ds0);
  if (N == 128)
    return launch_backward<E, 128, kRaw>(B, T, H, r, w, k, v, a, b, dy, s, sa, dr, dw, dk, dv, da, db, stream, ds0);
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t wkv7_forward(DType dtype, DecayInput decay, int B, int T, int H, int N, const void* r, const void* w,
                         const void* k, const void* v, const void* a, const void* b, void* y, float* s, float* sa,
                         cudaStream_t stream, const float* s0, long s0_stride) {
  const bool raw = decay == DecayInput::kRaw;
  if (dtype == DType::kBFloat16)
    return raw ? forward_for_head_size<__nv_bfloat16, true>(B, T, H, N, r, w, k, v, a, b, y, s, sa, stream, s0, s0_stride)
               : forward_for_head_size<__nv_bfloat16, false>(B, T, H, N, r, w, k, v, a, b, y, s, sa, stream, s0,
                                                             s0_stride);
  return raw ? forward_for_head_size<float, true>(B, T, H, N, r, w, k, v, a, b, y, s, sa, stream, s0, s0_stride)
             : forward_for_head_size<float, false>(B, T, H, N, r, w, k, v, a, b, y, s, sa, stream, s0, s0_stride);
}

cudaError_t wkv7_backward(DType dtype, DecayInput decay, int B, int T, int H, int N, const void* r, const void* w,
                          const void* k, const void* v, const void* a, const void* b, const void* dy, const float* s,
                          const float* sa, void* dr, void* dw, void* dk, void* dv, void* da, void* db,
                          cudaStream_t stream, float* ds0) {
  const bool raw = decay == DecayInput::kRaw;
  if (dtype == DType::kBFloat16)
    return raw ? backward_for_head_size<__nv_bfloat16, true>(B, T, H, N, r, w, k, v, a, b, dy, s, sa, dr, dw, dk, dv,
                                                             da, db, stream, ds0)
               : backward_for_head_size<__nv_bfloat16, false>(B, T, H, N, r, w, k, v, a, b, dy, s, sa, dr, dw, dk,
                                                              dv, da, db, stream, ds0);
  return raw ? backward_for_head_size<float, true>(B, T, H, N, r, w, k, v, a, b, dy, s, sa, dr, dw, dk, dv, da, db,
                                                   stream, ds0)
             : backward_for_head_size<float, false>(B, T, H, N, r, w, k, v, a, b, dy, s, sa, dr, dw, dk, dv, da, db,
                                                    stream, ds0);
}

}  // namespace rwkv7_cuda
