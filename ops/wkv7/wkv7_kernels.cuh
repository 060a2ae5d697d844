// WKV-7's CUDA kernels and their launchers: the seed's algorithm (RWKV-LM train_temp
// cuda/wkv7_cuda.cu), written anew. One block per (head, batch); the forward runs one thread per
// channel, the backward two (kBackwardSplit); float state in registers.
//
// This file is device code only and includes nothing: its includer provides the CUDA
// environment, either the real one (wkv7_cuda_kernels.cu, compiled by nvcc) or the CPU emulation
// (tests/cuda_emu/cuda_emu.h, used by wkv7_cuda_emu_test.cpp), and LAUNCH_KERNEL with it. Every
// name is in an anonymous namespace, so each includer gets its own copy.
//
// Two variants by template flag: the decay from w (d = exp(-exp(w)), the op's input since the
// seed) or from the raw decay input x (fused_ops: 1), w = -softplus(-x) - 0.5 computed here in
// float: d = exp(-e^-0.5 sigmoid(x)), and in the backward dL/dx = dL/dd * d * (-e^-0.5 s (1 - s)).
// N (the head size: the forward runs one thread per channel) is 64 or 128.
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
// row of R = s_reset as the state. The backward forms S_t from R's column at such a step (so that
// stepping back gives R as S_{t-1}), adds G (then dL/dR) to ds_reset and zeroes G; the state
// before the restart cannot be stepped back to from R, so the step before it rebuilds S from the
// chunk's start (the saved state, or s0 for the first chunk) forward with the saved S·a, at most
// kChunk - 1 steps.
//
// Backward runs in reverse time. Key channel i owns column i of S, row i and column i of
// G = dL/dS (split between two threads, see backward_kernel). It restarts from the saved S at each chunk end and in between
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

// Entry S_t[j][i] of the state, stepped forward from `s` = S_{t0-1}[j][i] through steps t0..t
// (restarts included) with the saved S·a: S[j][i] = S[j][i] d_i + sa_j b_i + v_j k_i. One entry at a
// time, so that the rebuild holds one accumulator, not a second copy of the thread's state.
template <typename T, int N, bool kRawDecay>
__device__ inline float rebuilt_entry(float s, int j, int i, int t0, int t, long row0, int H, int h,
                                      const T* __restrict__ w_, const T* __restrict__ k_,
                                      const T* __restrict__ v_, const T* __restrict__ b_,
                                      const float* __restrict__ sa_, const bool* __restrict__ reset_,
                                      const float* __restrict__ R) {
#pragma unroll 1
  for (int u = t0; u <= t; ++u) {
    const long row = ((row0 + u) * H + h) * N;
    if (reset_[row0 + u]) s = R[j * N + i];
    float du, unused;
    decay_of<kRawDecay>(load(w_ + row + i), &du, &unused);
    s = s * du + sa_[row + j] * load(b_ + row + i) + load(v_ + row + j) * load(k_ + row + i);
  }
  return s;
}

// The sum over j of each thread's share of a channel's dot products, completed over the kSplit
// threads of that channel: every one of them gets the same bits (parts added in order, through
// shared memory: no warp shuffles, so the CPU emulation runs it). `buf` holds kSums * blockDim.x
// floats; the caller separates two uses of it by a barrier after every thread has read the first.
template <int kSplit, int kSums>
__device__ inline void complete_sums(float (&sums)[kSums], float* buf) {
  if constexpr (kSplit > 1) {
    const int threads = blockDim.x, N = threads / kSplit, i = threadIdx.x % N;
#pragma unroll
    for (int q = 0; q < kSums; ++q) buf[q * threads + threadIdx.x] = sums[q];
    __syncthreads();
#pragma unroll
    for (int q = 0; q < kSums; ++q) {
      float sum = buf[q * threads + i];
#pragma unroll
      for (int p = 1; p < kSplit; ++p) sum += buf[q * threads + p * N + i];
      sums[q] = sum;
    }
  }
}

// kSplit threads per key channel: thread (i, p) = threadIdx.x (p * N + i) keeps the entries
// j in [p M, p M + M), M = N / kSplit, of S's column i and G's row and column i: 3 M floats in
// registers. With one thread per channel that is 3 N = 384 floats at N 128, and ptxas spills to
// local memory on every step (3.3 KB a thread; the restart variant spilled at N 64 too). A warp
// holds one part only, so its reads of the shared inputs are broadcasts. The dot products over j
// are summed per share, then completed by complete_sums; with kSplit 1 that is the plain sum over
// all j. Part 0 ("lead") loads the channel's inputs and stores its gradients.
//
// kRestarts: the wkv7_reset variant, compiled out of the kernel every other op runs. ptxas is
// sensitive to how its paths write the registers: S_col is written only at the top of a step
// (loads, the rebuild) and G is zeroed by selects; a branch that writes either mid-step cost
// 0.5-3 KB of spills.
template <typename T, int N, bool kRawDecay, bool kRestarts, int kSplit>
__global__ void __launch_bounds__(N * kSplit)
    backward_kernel(int Tlen, int H, const T* __restrict__ r_, const T* __restrict__ w_,
                    const T* __restrict__ k_, const T* __restrict__ v_, const T* __restrict__ a_,
                    const T* __restrict__ b_, const T* __restrict__ dy_, const float* __restrict__ s_,
                    const float* __restrict__ sa_, T* __restrict__ dr_, T* __restrict__ dw_,
                    T* __restrict__ dk_, T* __restrict__ dv_, T* __restrict__ da_, T* __restrict__ db_,
                    float* __restrict__ ds0_, const float* __restrict__ dsT_, const bool* __restrict__ reset_,
                    const float* __restrict__ s_reset_, long s_reset_batch_stride, float* __restrict__ ds_reset_,
                    const float* __restrict__ s0_, long s0_batch_stride) {
  constexpr int M = N / kSplit;
  static_assert(M * kSplit == N, "kSplit must divide the head size");
  const int bi = blockIdx.y, h = blockIdx.x, i = threadIdx.x % N, j0 = (threadIdx.x / N) * M;
  const bool lead = j0 == 0;
  const float* R = reset_ == nullptr ? nullptr : s_reset_ + bi * s_reset_batch_stride + long(h) * N * N;
  float* dR_row = ds_reset_ == nullptr ? nullptr : ds_reset_ + ((long(bi) * H + h) * N + i) * N + j0;
  if (dR_row != nullptr)
    for (int jj = 0; jj < M; ++jj) dR_row[jj] = 0.f;
  bool rebuild = false;  // a restart at t + 1 left R in S_col: step t must rebuild S_t
  float S_col[M], G_row[M], G_col[M];  // S[j][i], G[i][j], G[j][i] for j = j0 + jj
  const float* dsT = dsT_ == nullptr ? nullptr : dsT_ + (long(bi) * H + h) * N * N;
#pragma unroll
  for (int jj = 0; jj < M; ++jj) {
    S_col[jj] = 0.f;
    G_row[jj] = dsT == nullptr ? 0.f : dsT[i * N + j0 + jj];
    G_col[jj] = dsT == nullptr ? 0.f : dsT[(j0 + jj) * N + i];
  }
  __shared__ float r[N], decay[N], dlog_decay[N], k[N], v[N], a[N], b[N], dy[N], sa[N], dsa_shared[N];
  constexpr int kSums = 6;  // dr dd dk db dv dsa
  __shared__ float partial_sums[kSplit > 1 ? kSums * N * kSplit : 1];

  for (int t = Tlen - 1; t >= 0; --t) {
    const long idx = ((long(bi) * Tlen + t) * H + h) * N + i;
    __syncthreads();
    if (lead) {
      r[i] = load(r_ + idx);
      decay_of<kRawDecay>(load(w_ + idx), &decay[i], &dlog_decay[i]);
      k[i] = load(k_ + idx);
      a[i] = load(a_ + idx);
      b[i] = load(b_ + idx);
      v[i] = load(v_ + idx);
      dy[i] = load(dy_ + idx);
      sa[i] = sa_[idx];
    }
    __syncthreads();
    const float ri = r[i], di = decay[i], ki = k[i], ai = a[i], bi_ = b[i], dyi = dy[i];

    // S_col = S_t. At a restart S_t = R d_i + sa b_i + v k_i is formed from R here, and the plain
    // step back below then gives R again (to float rounding): every write of S_col is at this point,
    // because a branch or select that writes S_col later in the step costs ptxas spills.
    const bool restart = kRestarts && reset_[long(bi) * Tlen + t];
    if (kRestarts && restart) {
#pragma unroll
      for (int jj = 0; jj < M; ++jj) S_col[jj] = R[(j0 + jj) * N + i] * di + sa[j0 + jj] * bi_ + v[j0 + jj] * ki;
    } else if ((t + 1) % kChunk == 0) {
      const long base = ((long(bi) * H + h) * (Tlen / kChunk) + t / kChunk) * N * N;
#pragma unroll
      for (int jj = 0; jj < M; ++jj) S_col[jj] = s_[base + i * N + j0 + jj];
    } else if (kRestarts && rebuild) {  // S_t from the chunk's start state, entry by entry
      const int c = t / kChunk;
      const float* s0 = s0_ == nullptr ? nullptr : s0_ + bi * s0_batch_stride + long(h) * N * N;
      const long base = ((long(bi) * H + h) * (Tlen / kChunk) + c - 1) * N * N;
#pragma unroll
      for (int jj = 0; jj < M; ++jj) {
        const int j = j0 + jj;
        const float start = c > 0 ? s_[base + i * N + j] : s0 == nullptr ? 0.f : s0[j * N + i];
        S_col[jj] = rebuilt_entry<T, N, kRawDecay>(start, j, i, c * kChunk, t, long(bi) * Tlen, H, h, w_, k_, v_,
                                                   b_, sa_, reset_, R);
      }
    }

    float sums[kSums] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    float& dr = sums[0];
#pragma unroll
    for (int jj = 0; jj < M; ++jj) dr += S_col[jj] * dy[j0 + jj];

    // S_{t-1}[j][i] = (S_t[j][i] - v_j k_i - sa_j b_i) / d_i, R's column after a restart
    const float inv_di = 1.f / di;
#pragma unroll
    for (int jj = 0; jj < M; ++jj) S_col[jj] = (S_col[jj] - ki * v[j0 + jj] - bi_ * sa[j0 + jj]) * inv_di;
#pragma unroll
    for (int jj = 0; jj < M; ++jj) {
      G_row[jj] += dyi * r[j0 + jj];
      G_col[jj] += ri * dy[j0 + jj];
    }

    float &dd = sums[1], &dk = sums[2], &db = sums[3], &dv = sums[4], &dsa = sums[5];
#pragma unroll
    for (int jj = 0; jj < M; ++jj) dd += G_col[jj] * S_col[jj];
#pragma unroll
    for (int jj = 0; jj < M; ++jj) {
      const int j = j0 + jj;
      dk += G_col[jj] * v[j];
      db += G_col[jj] * sa[j];
    }
#pragma unroll
    for (int jj = 0; jj < M; ++jj) {
      const int j = j0 + jj;
      dv += G_row[jj] * k[j];
      dsa += G_row[jj] * b[j];
    }
    complete_sums<kSplit>(sums, partial_sums);
    if (lead) {
      store(dr_ + idx, dr);
      store(dw_ + idx, dd * di * dlog_decay[i]);
      store(dk_ + idx, dk);
      store(dv_ + idx, dv);
      store(db_ + idx, db);
    }

    __syncthreads();  // redundant (the loop-top barriers order the last reads of dsa_shared); as in the seed
    if (lead) dsa_shared[i] = dsa;
    __syncthreads();

    float da[1] = {0.f};
#pragma unroll
    for (int jj = 0; jj < M; ++jj) da[0] += S_col[jj] * dsa_shared[j0 + jj];
    complete_sums<kSplit>(da, partial_sums);
    if (lead) store(da_ + idx, da[0]);

#pragma unroll
    for (int jj = 0; jj < M; ++jj) {
      const int j = j0 + jj;
      G_row[jj] = G_row[jj] * decay[j] + dsa * a[j];
      G_col[jj] = G_col[jj] * di + ai * dsa_shared[j];
    }
    if (kRestarts) {  // at a restart G = dL/dR (row i here), and nothing flows further back
      if (restart && dR_row != nullptr) {
#pragma unroll
        for (int jj = 0; jj < M; ++jj) dR_row[jj] += G_row[jj];
      }
#pragma unroll
      for (int jj = 0; jj < M; ++jj) {  // selects, not a branch: a branch that writes G costs spills
        G_row[jj] = restart ? 0.f : G_row[jj];
        G_col[jj] = restart ? 0.f : G_col[jj];
      }
      rebuild = restart;
    }
  }
  if (ds0_ != nullptr) {  // G = dL/dS_0; this thread holds its share of row i
    float* row = ds0_ + ((long(bi) * H + h) * N + i) * N + j0;
#pragma unroll
    for (int jj = 0; jj < M; ++jj) row[jj] = G_row[jj];
  }
}

// Threads per key channel in the backward: with 2, no variant spills for sm_90 (ptxas with the
// build's flags, 1, 2, 4 and 8 tried; scripts/kernel-resources.sh --check in CI holds it): 3 N / 2
// floats of state per thread, 96 (N 64) or 192 (N 128) of the 255 registers.
constexpr int kBackwardSplit = 2;

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
  auto kernel = args.restarts.reset != nullptr ? backward_kernel<T, N, kRawDecay, true, kBackwardSplit>
                                               : backward_kernel<T, N, kRawDecay, false, kBackwardSplit>;
  return LAUNCH_KERNEL(kernel, dim3(H, B), dim3(N * kBackwardSplit), stream,
      Tlen, H, static_cast<const T*>(in.r), static_cast<const T*>(in.w), static_cast<const T*>(in.k),
      static_cast<const T*>(in.v), static_cast<const T*>(in.a), static_cast<const T*>(in.b),
      static_cast<const T*>(args.dy), args.s, args.sa, static_cast<T*>(grad.dr), static_cast<T*>(grad.dw),
      static_cast<T*>(grad.dk), static_cast<T*>(grad.dv), static_cast<T*>(grad.da), static_cast<T*>(grad.db),
      args.ds0, args.dsT, args.restarts.reset, args.restarts.s_reset, args.restarts.s_reset_batch_stride,
      args.restarts.ds_reset, args.s0, args.s0_batch_stride);
}

}  // namespace
}  // namespace rwkv7_cuda
