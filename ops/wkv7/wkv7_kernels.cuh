// WKV-7's CUDA kernels and their launchers: the seed's algorithm (RWKV-LM train_temp
// cuda/wkv7_cuda.cu), written anew. One block per (head, batch), one thread per channel; float
// state in registers.
//
// This file is device code only and includes nothing: its includer provides the CUDA
// environment, either the real one (wkv7_cuda_kernels.cu, compiled by nvcc) or the CPU emulation
// (tests/cuda_emu/cuda_emu.h, used by wkv7_cuda_emu_test.cpp), and LAUNCH_KERNEL with it. Every
// name is in an anonymous namespace, so each includer gets its own copy.
//
// Two variants by template flag: the decay from w (d = exp(-exp(w)), the op's input since the
// seed) or from the raw decay input x (fused_ops: 1), w = -softplus(-x) - 0.5 computed here in
// float: d = exp(-e^-0.5 sigmoid(x)), and in the backward dL/dx = dL/dd * d * (-e^-0.5 s (1 - s)).
// N (the head size, one thread per channel) is 64 or 128.
//
// Forward: thread i owns row i of S (value channel i):
//   sa_i = sum_j S[i][j] a_j ;  S[i][j] = S[i][j] d_j + sa_i b_j + v_i k_j ;  y_i = sum_j S[i][j] r_j
// and every kChunk steps writes S out (transposed) for the backward pass. With s_ and sa_ null
// (inference, no backward to come) nothing is saved. S starts at 0, or at the initial state
// s0 (row i of S[b][h] = s0 + b * s0_batch_stride + (h * N + i) * N; stride 0: one state for the
// whole batch), and the backward then also writes dL/dS_0 per sample (row i of G after step 0).
// State passing (long context): with sT non-null the forward writes the final state there (row i
// by thread i), and with dsT non-null the backward's G starts from dL/dS_T instead of 0.
//
// Restarts (wkv7_reset, packed documents): before a step t with reset[b][t] every thread loads its
// row of R = s_reset as the state. The backward then reads R's column as S_{t-1}, adds G (then
// dL/dR) to ds_reset and zeroes G; the state before the restart cannot be stepped back to from R,
// so the step before it rebuilds S from the chunk's start (the saved state, or s0 for the first
// chunk) forward with the saved S·a, at most kChunk - 1 steps.
//
// Backward runs in reverse time. Thread i owns column i of S (key channel i), row i and
// column i of G = dL/dS. It restarts from the saved S at each chunk end and in between
// steps back with S_{t-1}[j][i] = (S_t[j][i] - v_j k_i - sa_j b_i) / d_i; the seed's
// soft clamp w < -0.5 keeps d_i >= 0.54, so the division is tame (see ops/schema.cpp for the
// precondition on w). The gradient formulas are those of wkv7_cpu.cpp, the slow reference these
// kernels are tested against.
#pragma once

#include "../cuda_common.cuh"
#include "wkv7_cuda_shape.h"
#include "wkv7_launch_args.h"

namespace rwkv7_cuda {
namespace {

constexpr float kExpMinusHalf = 0.60653065971263342f;  // e^-0.5

// The decay d = exp(log_d) of one input, and d log_d / d input (for the backward).
template <bool kRawDecay>
__device__ inline void decay_of(float input, float* d, float* dlog_d) {
  if (kRawDecay) {
    const float s = fast_sigmoid(input);
    *d = __expf(-kExpMinusHalf * s);
    *dlog_d = -kExpMinusHalf * s * (1.f - s);
  } else {
    const float neg_exp_w = -__expf(input);
    *d = __expf(neg_exp_w);
    *dlog_d = neg_exp_w;
  }
}

template <typename T, int N, bool kRawDecay>
__global__ void forward_kernel(int Tlen, int H, const T* __restrict__ r_, const T* __restrict__ w_,
                               const T* __restrict__ k_, const T* __restrict__ v_,
                               const T* __restrict__ a_, const T* __restrict__ b_,
                               T* __restrict__ y_, float* __restrict__ s_,
                               float* __restrict__ sa_, const float* __restrict__ s0_,
                               long s0_batch_stride, float* __restrict__ sT_, const bool* __restrict__ reset_,
                               const float* __restrict__ s_reset_, long s_reset_batch_stride) {
  const int bi = blockIdx.y, h = blockIdx.x, i = threadIdx.x;
  float state[N];
  const float* s0_row = s0_ == nullptr ? nullptr : s0_ + bi * s0_batch_stride + (long(h) * N + i) * N;
#pragma unroll
  for (int j = 0; j < N; ++j) state[j] = s0_row == nullptr ? 0.f : s0_row[j];
  __shared__ float r[N], decay[N], k[N], a[N], b[N];

  for (int t = 0; t < Tlen; ++t) {
    const long idx = ((long(bi) * Tlen + t) * H + h) * N + i;
    __syncthreads();
    r[i] = load(r_ + idx);
    float unused;
    decay_of<kRawDecay>(load(w_ + idx), &decay[i], &unused);
    k[i] = load(k_ + idx);
    a[i] = load(a_ + idx);
    b[i] = load(b_ + idx);
    __syncthreads();

    if (reset_ != nullptr && reset_[long(bi) * Tlen + t]) {  // the same for every thread of the block
      const float* R_row = s_reset_ + bi * s_reset_batch_stride + (long(h) * N + i) * N;
#pragma unroll
      for (int j = 0; j < N; ++j) state[j] = R_row[j];
    }

    float sa = 0.f;
#pragma unroll
    for (int j = 0; j < N; ++j) sa += a[j] * state[j];
    if (sa_ != nullptr) sa_[idx] = sa;

    const float v = load(v_ + idx);
    float y = 0.f;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      state[j] = state[j] * decay[j] + sa * b[j] + k[j] * v;
      y += state[j] * r[j];
    }
    store(y_ + idx, y);

    if (s_ != nullptr && (t + 1) % kChunk == 0) {
      const long base = ((long(bi) * H + h) * (Tlen / kChunk) + t / kChunk) * N * N;
#pragma unroll
      for (int j = 0; j < N; ++j) s_[base + j * N + i] = state[j];  // s[j][i] = S[i][j]
    }
  }
  if (sT_ != nullptr) {
    float* row = sT_ + ((long(bi) * H + h) * N + i) * N;
#pragma unroll
    for (int j = 0; j < N; ++j) row[j] = state[j];
  }
}

// kRestarts: the wkv7_reset variant. Its rebuild and restart paths cost registers; compiled out of
// the kernel every other op runs, which keeps that one free of spills (scripts/kernel-resources.sh).
template <typename T, int N, bool kRawDecay, bool kRestarts>
__global__ void backward_kernel(int Tlen, int H, const T* __restrict__ r_,
                                const T* __restrict__ w_, const T* __restrict__ k_,
                                const T* __restrict__ v_, const T* __restrict__ a_,
                                const T* __restrict__ b_, const T* __restrict__ dy_,
                                const float* __restrict__ s_, const float* __restrict__ sa_,
                                T* __restrict__ dr_, T* __restrict__ dw_, T* __restrict__ dk_,
                                T* __restrict__ dv_, T* __restrict__ da_, T* __restrict__ db_,
                                float* __restrict__ ds0_, const float* __restrict__ dsT_,
                                const bool* __restrict__ reset_, const float* __restrict__ s_reset_,
                                long s_reset_batch_stride, float* __restrict__ ds_reset_,
                                const float* __restrict__ s0_, long s0_batch_stride) {
  const int bi = blockIdx.y, h = blockIdx.x, i = threadIdx.x;
  const float* R = reset_ == nullptr ? nullptr : s_reset_ + bi * s_reset_batch_stride + long(h) * N * N;
  float* dR_row = ds_reset_ == nullptr ? nullptr : ds_reset_ + ((long(bi) * H + h) * N + i) * N;
  if (dR_row != nullptr)
    for (int j = 0; j < N; ++j) dR_row[j] = 0.f;
  bool rebuild = false;  // a restart at t + 1 left R in S_col: step t must rebuild S_t
  float S_col[N], G_row[N], G_col[N];  // S[j][i], G[i][j], G[j][i]
  const float* dsT = dsT_ == nullptr ? nullptr : dsT_ + (long(bi) * H + h) * N * N;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    S_col[j] = 0.f;
    G_row[j] = dsT == nullptr ? 0.f : dsT[i * N + j];
    G_col[j] = dsT == nullptr ? 0.f : dsT[j * N + i];
  }
  __shared__ float r[N], decay[N], k[N], v[N], a[N], b[N], dy[N], sa[N], dsa_shared[N];

  for (int t = Tlen - 1; t >= 0; --t) {
    const long idx = ((long(bi) * Tlen + t) * H + h) * N + i;
    __syncthreads();
    const float ri = r[i] = load(r_ + idx);
    float di, dlog_d;
    decay_of<kRawDecay>(load(w_ + idx), &di, &dlog_d);
    decay[i] = di;
    const float ki = k[i] = load(k_ + idx);
    const float ai = a[i] = load(a_ + idx);
    const float bi_ = b[i] = load(b_ + idx);
    v[i] = load(v_ + idx);
    const float dyi = dy[i] = load(dy_ + idx);
    sa[i] = sa_[idx];
    __syncthreads();

    if ((t + 1) % kChunk == 0) {
      const long base = ((long(bi) * H + h) * (Tlen / kChunk) + t / kChunk) * N * N;
#pragma unroll
      for (int j = 0; j < N; ++j) S_col[j] = s_[base + i * N + j];
    } else if (kRestarts && rebuild) {  // S_t from the chunk's start: S[j][i] = S[j][i] d_i + sa_j b_i + v_j k_i
      const int c = t / kChunk, t0 = c * kChunk;
      if (c > 0) {
        const long base = ((long(bi) * H + h) * (Tlen / kChunk) + c - 1) * N * N;
#pragma unroll
        for (int j = 0; j < N; ++j) S_col[j] = s_[base + i * N + j];
      } else {
        const float* s0 = s0_ == nullptr ? nullptr : s0_ + bi * s0_batch_stride + long(h) * N * N;
#pragma unroll
        for (int j = 0; j < N; ++j) S_col[j] = s0 == nullptr ? 0.f : s0[j * N + i];
      }
      for (int u = t0; u <= t; ++u) {
        const long row = ((long(bi) * Tlen + u) * H + h) * N;
        if (reset_[long(bi) * Tlen + u]) {
#pragma unroll
          for (int j = 0; j < N; ++j) S_col[j] = R[j * N + i];
        }
        float du, unused;
        decay_of<kRawDecay>(load(w_ + row + i), &du, &unused);
        const float ku = load(k_ + row + i), bu = load(b_ + row + i);
#pragma unroll
        for (int j = 0; j < N; ++j) S_col[j] = S_col[j] * du + sa_[row + j] * bu + load(v_ + row + j) * ku;
      }
    }
    rebuild = false;
    const bool restart = kRestarts && reset_[long(bi) * Tlen + t];

    float dr = 0.f;
#pragma unroll
    for (int j = 0; j < N; ++j) dr += S_col[j] * dy[j];
    store(dr_ + idx, dr);

    const float inv_di = 1.f / di;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      // now S_{t-1}[j][i], or R's column after a restart
      S_col[j] = restart ? R[j * N + i] : (S_col[j] - ki * v[j] - bi_ * sa[j]) * inv_di;
      G_row[j] += dyi * r[j];
      G_col[j] += ri * dy[j];
    }

    float dd = 0.f, dk = 0.f, dv = 0.f, db = 0.f, dsa = 0.f;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      dd += G_col[j] * S_col[j];
      dk += G_col[j] * v[j];
      db += G_col[j] * sa[j];
      dv += G_row[j] * k[j];
      dsa += G_row[j] * b[j];
    }
    store(dw_ + idx, dd * di * dlog_d);
    store(dk_ + idx, dk);
    store(dv_ + idx, dv);
    store(db_ + idx, db);

    __syncthreads();  // redundant (the loop-top barriers already order the last reads); kept as the seed has it
    dsa_shared[i] = dsa;
    __syncthreads();

    float da = 0.f;
#pragma unroll
    for (int j = 0; j < N; ++j) da += S_col[j] * dsa_shared[j];
    store(da_ + idx, da);

#pragma unroll
    for (int j = 0; j < N; ++j) {
      G_row[j] = G_row[j] * decay[j] + dsa * a[j];
      G_col[j] = G_col[j] * di + ai * dsa_shared[j];
    }
    if (kRestarts && restart) {  // G = dL/dR of this restart (row i here); nothing flows further back
#pragma unroll
      for (int j = 0; j < N; ++j) {
        if (dR_row != nullptr) dR_row[j] += G_row[j];
        G_row[j] = 0.f;
        G_col[j] = 0.f;
      }
      rebuild = true;
    }
  }
  if (ds0_ != nullptr) {  // G = dL/dS_0; this thread holds row i
    float* row = ds0_ + ((long(bi) * H + h) * N + i) * N;
#pragma unroll
    for (int j = 0; j < N; ++j) row[j] = G_row[j];
  }
}

template <typename T, int N = kHeadSize, bool kRawDecay = false>
cudaError_t launch_forward(int B, int Tlen, int H, const Wkv7ForwardArgs& args, cudaStream_t stream) {
  if (Tlen % kChunk != 0 || B < 1 || H < 1) return cudaErrorInvalidValue;
  const Wkv7Inputs& in = args.in;
  return LAUNCH_KERNEL((forward_kernel<T, N, kRawDecay>), dim3(H, B), dim3(N), stream,
      Tlen, H, static_cast<const T*>(in.r), static_cast<const T*>(in.w), static_cast<const T*>(in.k),
      static_cast<const T*>(in.v), static_cast<const T*>(in.a), static_cast<const T*>(in.b),
      static_cast<T*>(args.y), args.s, args.sa, args.s0, args.s0_batch_stride, args.sT, args.restarts.reset,
      args.restarts.s_reset, args.restarts.s_reset_batch_stride);
}

template <typename T, int N = kHeadSize, bool kRawDecay = false>
cudaError_t launch_backward(int B, int Tlen, int H, const Wkv7BackwardArgs& args, cudaStream_t stream) {
  if (Tlen % kChunk != 0 || B < 1 || H < 1) return cudaErrorInvalidValue;
  const Wkv7Inputs& in = args.in;
  const Wkv7Grads& grad = args.grad;
  auto kernel = args.restarts.reset != nullptr ? backward_kernel<T, N, kRawDecay, true>
                                               : backward_kernel<T, N, kRawDecay, false>;
  return LAUNCH_KERNEL(kernel, dim3(H, B), dim3(N), stream,
      Tlen, H, static_cast<const T*>(in.r), static_cast<const T*>(in.w), static_cast<const T*>(in.k),
      static_cast<const T*>(in.v), static_cast<const T*>(in.a), static_cast<const T*>(in.b),
      static_cast<const T*>(args.dy), args.s, args.sa, static_cast<T*>(grad.dr), static_cast<T*>(grad.dw),
      static_cast<T*>(grad.dk), static_cast<T*>(grad.dv), static_cast<T*>(grad.da), static_cast<T*>(grad.db),
      args.ds0, args.dsT, args.restarts.reset, args.restarts.s_reset, args.restarts.s_reset_batch_stride,
      args.restarts.ds_reset, args.s0, args.s0_batch_stride);
}

}  // namespace
}  // namespace rwkv7_cuda
