// lnx_rkvres_xg's CUDA kernels and launchers (math in lnx_rkvres_xg_cpu.cpp, the reference they
// are tested against). Block (h, p) is head h of rows [p*R, p*R + R) of the B*T rows, one thread
// per channel of the head (blockDim = N, a power of two); the per-head mean, variance and bonus
// sum are block_sums. The backward also sums the three per-channel gradients (dr_k, dln_w, dln_b)
// over its rows, in registers, and writes them as partials that a second pass adds in a fixed
// order (deterministic, no atomics).
//
// Device code only: the includer provides the CUDA environment and LAUNCH_KERNEL.
#pragma once

#include "../cuda_common.cuh"
#include "lnx_rkvres_xg_launch_args.h"

namespace rwkv7_cuda {
namespace {

// What both passes recompute for one row of one head, from this thread's channel.
struct LnxRow {
  float yhat;  // (y - mu) * rstd
  float rstd;  // 1 / sqrt(var + eps), the same for every channel of the head
  float rk;    // sum_n r * k * r_k, the same for every channel of the head
};

__device__ inline LnxRow lnx_row(float y, float r, float k, float r_k, float eps, float* buf) {
  const float inv_n = 1.f / float(blockDim.x);
  const float centred = y - block_sum(y, buf) * inv_n;
  const float rstd = 1.f / sqrtf(block_sum(centred * centred, buf) * inv_n + eps);  // biased variance
  return {centred * rstd, rstd, block_sum(r * k * r_k, buf)};
}

template <typename T>
__global__ void lnx_rkvres_xg_forward_kernel(long rows, int C, float eps, const T* __restrict__ y_,
                                             const T* __restrict__ r_, const T* __restrict__ k_,
                                             const T* __restrict__ v_, const T* __restrict__ r_k_,
                                             const T* __restrict__ g_, const T* __restrict__ ln_w_,
                                             const T* __restrict__ ln_b_, T* __restrict__ out_) {
  __shared__ float buf[1024];
  const int c = int(blockIdx.x) * blockDim.x + threadIdx.x;  // r_k [H, N] is indexed by c as well
  const float rkc = load(r_k_ + c), w = load(ln_w_ + c), b = load(ln_b_ + c);
  long row_begin, row_end;
  rows_of_block(rows, kHeadRowsPerBlock, blockIdx.y, &row_begin, &row_end);
  for (long row = row_begin; row < row_end; ++row) {
    const long e = row * C + c;
    const LnxRow n = lnx_row(load(y_ + e), load(r_ + e), load(k_ + e), rkc, eps, buf);
    store(out_ + e, (n.yhat * w + b + n.rk * load(v_ + e)) * load(g_ + e));
  }
}

// partial: float [row blocks][3][C]: dr_k, dln_w, dln_b of this block's rows
template <typename T>
__global__ void lnx_rkvres_xg_backward_kernel(long rows, int C, float eps, const T* __restrict__ y_,
                                              const T* __restrict__ r_, const T* __restrict__ k_,
                                              const T* __restrict__ v_, const T* __restrict__ r_k_,
                                              const T* __restrict__ g_, const T* __restrict__ ln_w_,
                                              const T* __restrict__ ln_b_, const T* __restrict__ dout_,
                                              T* __restrict__ dy_, T* __restrict__ dr_, T* __restrict__ dk_,
                                              T* __restrict__ dv_, T* __restrict__ dg_, float* __restrict__ partial) {
  __shared__ float buf[1024];
  const int c = int(blockIdx.x) * blockDim.x + threadIdx.x;
  const float rkc = load(r_k_ + c), w = load(ln_w_ + c), b = load(ln_b_ + c);
  const float inv_n = 1.f / float(blockDim.x);
  float sum_drk = 0.f, sum_dw = 0.f, sum_db = 0.f;
  long row_begin, row_end;
  rows_of_block(rows, kHeadRowsPerBlock, blockIdx.y, &row_begin, &row_end);
  for (long row = row_begin; row < row_end; ++row) {
    const long e = row * C + c;
    const float r = load(r_ + e), k = load(k_ + e), v = load(v_ + e), dout = load(dout_ + e);
    const LnxRow n = lnx_row(load(y_ + e), r, k, rkc, eps, buf);
    const float dz = dout * load(g_ + e);
    const float dyhat = dz * w;
    const float mean_dyhat = block_sum(dyhat, buf) * inv_n;
    const float mean_dyhat_yhat = block_sum(dyhat * n.yhat, buf) * inv_n;
    const float drk = block_sum(dz * v, buf);
    store(dy_ + e, n.rstd * (dyhat - mean_dyhat - n.yhat * mean_dyhat_yhat));
    store(dr_ + e, drk * k * rkc);
    store(dk_ + e, drk * r * rkc);
    store(dv_ + e, dz * n.rk);
    store(dg_ + e, dout * (n.yhat * w + b + n.rk * v));
    sum_drk += drk * r * k;
    sum_dw += dz * n.yhat;
    sum_db += dz;
  }
  float* p = partial + long(blockIdx.y) * 3 * C;
  p[c] = sum_drk;
  p[C + c] = sum_dw;
  p[2 * C + c] = sum_db;
}

template <typename T>
cudaError_t launch_lnx_rkvres_xg_forward(long rows, int C, int H, float eps, const LnxRkvresXgForwardArgs& args,
                                         cudaStream_t stream) {
  if (!head_blocks_shape_ok(rows, C, H)) return cudaErrorInvalidValue;
  const LnxRkvresXgInputs& in = args.in;
  return LAUNCH_KERNEL(lnx_rkvres_xg_forward_kernel<T>, dim3(unsigned(H), unsigned(head_row_blocks(rows))),
                       dim3(unsigned(C / H)), stream, rows, C, eps, static_cast<const T*>(in.y),
                       static_cast<const T*>(in.r), static_cast<const T*>(in.k), static_cast<const T*>(in.v),
                       static_cast<const T*>(in.r_k), static_cast<const T*>(in.g), static_cast<const T*>(in.ln_w),
                       static_cast<const T*>(in.ln_b), static_cast<T*>(args.out));
}

// `partial`: float [head_row_blocks(rows) * 3 * C] of scratch.
template <typename T>
cudaError_t launch_lnx_rkvres_xg_backward(long rows, int C, int H, float eps, const LnxRkvresXgBackwardArgs& args,
                                          float* partial, cudaStream_t stream) {
  if (!head_blocks_shape_ok(rows, C, H)) return cudaErrorInvalidValue;
  const LnxRkvresXgInputs& in = args.in;
  const LnxRkvresXgGrads& grad = args.grad;
  const int blocks = head_row_blocks(rows);
  cudaError_t err = LAUNCH_KERNEL(
      lnx_rkvres_xg_backward_kernel<T>, dim3(unsigned(H), unsigned(blocks)), dim3(unsigned(C / H)), stream, rows, C,
      eps, static_cast<const T*>(in.y), static_cast<const T*>(in.r), static_cast<const T*>(in.k),
      static_cast<const T*>(in.v), static_cast<const T*>(in.r_k), static_cast<const T*>(in.g),
      static_cast<const T*>(in.ln_w), static_cast<const T*>(in.ln_b), static_cast<const T*>(args.dout),
      static_cast<T*>(grad.dy), static_cast<T*>(grad.dr), static_cast<T*>(grad.dk), static_cast<T*>(grad.dv),
      static_cast<T*>(grad.dg), partial);
  if (err != cudaSuccess) return err;
  void* outs[3] = {grad.dr_k, grad.dln_w, grad.dln_b};
  return launch_sum_partial_vectors<T>(blocks, 3, C, partial, outs, stream);
}

}  // namespace
}  // namespace rwkv7_cuda
