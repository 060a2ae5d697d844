// kk_pre's CUDA kernels and launchers (math in kk_pre_cpu.cpp, the reference they are tested
// against). Block (h, p) is head h of rows [p*R, p*R + R) of the B*T rows, one thread per channel
// of the head (blockDim = N, a power of two); the per-head norm is a block_sum. The backward also
// sums the three per-channel gradients over its rows, in registers, and writes them as partials
// that a second pass adds in a fixed order (deterministic, no atomics).
//
// Device code only: the includer provides the CUDA environment and LAUNCH_KERNEL.
#pragma once

#include "../cuda_common.cuh"
#include "kk_pre_launch_args.h"

namespace rwkv7_cuda {
namespace {

// What both passes recompute for one row of one head, from this thread's channel.
struct KkRow {
  float k, a;        // k and the in-context rate a = sigmoid(a0 + a_in)
  float kk, norm;    // kk = u / max(|u|, 1e-12) with u = k * k_k; |u| over the head
  bool clamped;      // |u| <= 1e-12
};

__device__ inline KkRow kk_row(float k, float a_in, float a0, float k_k, float* buf) {
  const float u = k * k_k;
  const float norm = sqrtf(block_sum(u * u, buf));
  const bool clamped = !(norm > 1e-12f);
  return {k, fast_sigmoid(a0 + a_in), u / (clamped ? 1e-12f : norm), norm, clamped};
}

template <typename T>
__global__ void kk_pre_forward_kernel(long rows, int C, const T* __restrict__ k_, const T* __restrict__ a_in_,
                                      const T* __restrict__ a0_, const T* __restrict__ k_k_,
                                      const T* __restrict__ k_a_, T* __restrict__ k_out_, T* __restrict__ neg_kk_,
                                      T* __restrict__ kk_a_) {
  __shared__ float buf[1024];
  const int c = int(blockIdx.x) * blockDim.x + threadIdx.x;
  const float a0 = load(a0_ + c), kkc = load(k_k_ + c), kac = load(k_a_ + c);
  long row_begin, row_end;
  rows_of_block(rows, kHeadRowsPerBlock, blockIdx.y, &row_begin, &row_end);
  for (long row = row_begin; row < row_end; ++row) {
    const long e = row * C + c;
    const KkRow n = kk_row(load(k_ + e), load(a_in_ + e), a0, kkc, buf);
    store(k_out_ + e, n.k * (1.f + (n.a - 1.f) * kac));
    store(neg_kk_ + e, -n.kk);
    store(kk_a_ + e, n.kk * n.a);
  }
}

// partial: float [row blocks][3][C]: da0, dk_k, dk_a of this block's rows
template <typename T>
__global__ void kk_pre_backward_kernel(long rows, int C, const T* __restrict__ k_, const T* __restrict__ a_in_,
                                       const T* __restrict__ a0_, const T* __restrict__ k_k_,
                                       const T* __restrict__ k_a_, const T* __restrict__ dk_out_,
                                       const T* __restrict__ dneg_, const T* __restrict__ dkka_,
                                       T* __restrict__ dk_, T* __restrict__ da_in_, float* __restrict__ partial) {
  __shared__ float buf[1024];
  const int c = int(blockIdx.x) * blockDim.x + threadIdx.x;
  const float a0 = load(a0_ + c), kkc = load(k_k_ + c), kac = load(k_a_ + c);
  float sum_da0 = 0.f, sum_dkk = 0.f, sum_dka = 0.f;
  long row_begin, row_end;
  rows_of_block(rows, kHeadRowsPerBlock, blockIdx.y, &row_begin, &row_end);
  for (long row = row_begin; row < row_end; ++row) {
    const long e = row * C + c;
    const KkRow n = kk_row(load(k_ + e), load(a_in_ + e), a0, kkc, buf);
    const float k = n.k, a = n.a, kk = n.kk;
    const float dk_out = load(dk_out_ + e), dkka = load(dkka_ + e);
    const float dkk = dkka * a - load(dneg_ + e);
    const float dot = block_sum(dkk * kk, buf);
    const float du = n.clamped ? dkk / 1e-12f : (dkk - kk * dot) / n.norm;
    const float da_in = (dk_out * k * kac + dkka * kk) * a * (1.f - a);
    store(dk_ + e, dk_out * (1.f + (a - 1.f) * kac) + du * kkc);
    store(da_in_ + e, da_in);
    sum_da0 += da_in;
    sum_dkk += du * k;
    sum_dka += dk_out * k * (a - 1.f);
  }
  float* p = partial + long(blockIdx.y) * 3 * C;
  p[c] = sum_da0;
  p[C + c] = sum_dkk;
  p[2 * C + c] = sum_dka;
}

template <typename T>
cudaError_t launch_kk_pre_forward(long rows, int C, int H, const KkPreForwardArgs& args, cudaStream_t stream) {
  if (!head_blocks_shape_ok(rows, C, H)) return cudaErrorInvalidValue;
  const KkPreInputs& in = args.in;
  const KkPreOutputs& out = args.out;
  return LAUNCH_KERNEL(kk_pre_forward_kernel<T>, dim3(unsigned(H), unsigned(head_row_blocks(rows))),
                       dim3(unsigned(C / H)), stream, rows, C, static_cast<const T*>(in.k),
                       static_cast<const T*>(in.a_in), static_cast<const T*>(in.a0), static_cast<const T*>(in.k_k),
                       static_cast<const T*>(in.k_a), static_cast<T*>(out.k_out), static_cast<T*>(out.neg_kk),
                       static_cast<T*>(out.kk_a));
}

// `partial`: float [head_row_blocks(rows) * 3 * C] of scratch.
template <typename T>
cudaError_t launch_kk_pre_backward(long rows, int C, int H, const KkPreBackwardArgs& args, float* partial,
                                   cudaStream_t stream) {
  if (!head_blocks_shape_ok(rows, C, H)) return cudaErrorInvalidValue;
  const KkPreInputs& in = args.in;
  const KkPreOutputGrads& dout = args.dout;
  const KkPreGrads& grad = args.grad;
  const int blocks = head_row_blocks(rows);
  cudaError_t err = LAUNCH_KERNEL(
      kk_pre_backward_kernel<T>, dim3(unsigned(H), unsigned(blocks)), dim3(unsigned(C / H)), stream, rows, C,
      static_cast<const T*>(in.k), static_cast<const T*>(in.a_in), static_cast<const T*>(in.a0),
      static_cast<const T*>(in.k_k), static_cast<const T*>(in.k_a), static_cast<const T*>(dout.dk_out),
      static_cast<const T*>(dout.dneg_kk), static_cast<const T*>(dout.dkk_a), static_cast<T*>(grad.dk),
      static_cast<T*>(grad.da_in), partial);
  if (err != cudaSuccess) return err;
  void* outs[3] = {grad.da0, grad.dk_k, grad.dk_a};
  return launch_sum_partial_vectors<T>(blocks, 3, C, partial, outs, stream);
}

}  // namespace
}  // namespace rwkv7_cuda
