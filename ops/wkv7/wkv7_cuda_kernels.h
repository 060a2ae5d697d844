// The pure CUDA side of WKV-7: no LibTorch here, so that `rwkv7_cuda_kernels` builds wherever
// nvcc exists. wkv7_cuda.cpp wraps these launchers as the op's CUDA kernels.
#pragma once
#include <cuda_runtime_api.h>

#include "../cuda_dtype.h"
#include "wkv7_cuda_shape.h"
#include "wkv7_launch_args.h"

namespace rwkv7_cuda {

// Which decay input the kernels take: w (d = exp(-exp(w))) or the raw x before the soft clamp
// (w = -softplus(-x) - 0.5, computed inside in float).
enum class DecayInput { kLogLog, kRaw };

// Inputs r, w, k, v, a, b and y are contiguous [B, T, H, N] of `dtype`; N is 64 or 128;
// T % kChunk == 0.
// s:  float [B, H, T / kChunk, N, N], the state after each chunk (stored transposed)
// sa: float [B, T, H, N], S_{t-1} a_t
// s and sa may both be null (inference): then nothing is saved.
// s0: null (S starts at 0) or the float initial state, [B, H, N, N] with s0_batch_stride H*N*N,
// or [H, N, N] shared by the batch with s0_batch_stride 0.
// sT: null, or float [B, H, N, N] that receives the final state (state passing).
cudaError_t wkv7_forward(DType dtype, DecayInput decay, int B, int T, int H, int N, const Wkv7ForwardArgs& args,
                         cudaStream_t stream);

// dy in, six gradients out (dw: of whichever decay input), all [B, T, H, N] of `dtype`; s and
// sa from wkv7_forward. ds0: null, or float [B, H, N, N] that receives dL/dS_0 per sample.
// dsT: null, or float [B, H, N, N], the gradient arriving through the final state.
cudaError_t wkv7_backward(DType dtype, DecayInput decay, int B, int T, int H, int N, const Wkv7BackwardArgs& args,
                          cudaStream_t stream);

}  // namespace rwkv7_cuda
