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
cudaError_t forward_for_head_size(int B, int T, int H, int N, const Wkv7ForwardArgs& args, cudaStream_t stream) {
  if (N == 64) return launch_forward<E, 64, kRaw>(B, T, H, args, stream);
  if (N == 128) return launch_forward<E, 128, kRaw>(B, T, H, args, stream);
  return cudaErrorInvalidValue;
}

template <typename E, bool kRaw>
cudaError_t backward_for_head_size(int B, int T, int H, int N, const Wkv7BackwardArgs& args, cudaStream_t stream) {
  if (N == 64) return launch_backward<E, 64, kRaw>(B, T, H, args, stream);
  if (N == 128) return launch_backward<E, 128, kRaw>(B, T, H, args, stream);
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t wkv7_forward(DType dtype, DecayInput decay, int B, int T, int H, int N, const Wkv7ForwardArgs& args,
                         cudaStream_t stream) {
  const bool raw = decay == DecayInput::kRaw;
  if (dtype == DType::kBFloat16)
    return raw ? forward_for_head_size<__nv_bfloat16, true>(B, T, H, N, args, stream)
               : forward_for_head_size<__nv_bfloat16, false>(B, T, H, N, args, stream);
  return raw ? forward_for_head_size<float, true>(B, T, H, N, args, stream)
             : forward_for_head_size<float, false>(B, T, H, N, args, stream);
}

cudaError_t wkv7_backward(DType dtype, DecayInput decay, int B, int T, int H, int N, const Wkv7BackwardArgs& args,
                          cudaStream_t stream) {
  const bool raw = decay == DecayInput::kRaw;
  if (dtype == DType::kBFloat16)
    return raw ? backward_for_head_size<__nv_bfloat16, true>(B, T, H, N, args, stream)
               : backward_for_head_size<__nv_bfloat16, false>(B, T, H, N, args, stream);
  return raw ? backward_for_head_size<float, true>(B, T, H, N, args, stream)
             : backward_for_head_size<float, false>(B, T, H, N, args, stream);
}

}  // namespace rwkv7_cuda
