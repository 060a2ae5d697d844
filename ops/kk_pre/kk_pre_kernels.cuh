// kk_pre's CUDA kernels and launchers (math in kk_pre_cpu.cpp, the reference they are tested
// against). Block (h, p) is head h of rows [p*R, p*R + R) of the B*T rows, one thread per channel
// of the head (blockDim = N, a power of two); the per-head norm is a block_sum. The backward also
// sums the three per-channel gradients over its rows, in registers, and writes them as partials
// that a second pass adds in a fixed order (deterministic, no atomics).
//
// Device code only: the includer provides the CUDA environment and LAUNCH_KERNEL.
#pragma once

#include "../cuda_common.cuh"

namespace rwkv7_cuda {
namespace {

constexpr int kKkRowsPerBlock = 32;

__device__ inline float sigmoidf_(float x) { return 1.f / (1.f + __expf(-x)); }

template <typename T>
__global__ void kk_pre_forward_kernel(long rows, int C, const T* __restrict__ k_, const T* __restrict__ a_in_,
                                      const T* __restrict__ a0_, const T* __restrict__ k_k_,
                                      const T* __restrict__ k_a_, T* __restrict__ k_out_, T* __restrict__ neg_kk_,
                                      T* __restrict__ kk_a_) {
  __shared__ float buf[1024];
  const int c = int(blockIdx.x) * blockDim.x + threadIdx.x;
  const float a0 = load(a0_ + c), kkc = load(k_k_ + c), kac = load(k_a_ + c);
  const long row_end = (long(blockIdx.y) + 1) * kKkRowsPerBlock < rows ? (long(blockIdx.y) + 1) * kKkRowsPerBlock : rows;
  for (long row = long(blockIdx.y) * kKkRowsPerBlock; row < row_end; ++row) {
    const long e = row * C + c;
    const float k = load(k_ + e), a = sigmoidf_(a0 + load(a_in_ + e));
    const float u = k * kkc;
    const float norm = sqrtf(block_sum(u * u, buf));
    const float kk = u / (norm > 1e-12f ? norm : 1e-12f);
    store(k_out_ + e, k * (1.f + (a - 1.f) * kac));
    store(neg_kk_ + e, -kk);
    store(kk_a_ + e, kk * a);
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
  const long row_end = (long(blockIdx.y) + 1) * kKkRowsPerBlock < rows ? (long(blockIdx.y) + 1) * kKkRowsPerBlock : rows;
  for (long row = long(blockIdx.y) * kKkRowsPerBlock; row < row_end; ++row) {
    const long e = row * C + c;
    const float k = load(k_ + e), a = sigmoidf_(a0 + load(a_in_ + e));
    const float u = k * kkc;
    const float norm = sqrtf(block_sum(u * u, buf));
    const bool clamped = !(norm > 1e-12f);
    const float kk = u / (clamped ? 1e-12f : norm);
    const float dk_out = load(dk_out_ + e), dkka = load(dkka_ + e);
    const float dkk = dkka * a - load(dneg_ + e);
    const float dot = block_sum(dkk * kk, buf);
    const float du = clamped ? dkk / 1e-12f : (dkk - kk * dot) / norm;
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

// One thread per (q, c): the sum over row blocks of partial[.][q][c], stored to out_q[c].
template <typename T>
__global__ void kk_pre_param_sum_kernel(int partials, int C, const float* __restrict__ partial, T* __restrict__ da0,
                                        T* __restrict__ dk_k, T* __restrict__ dk_a) {
  const int e = int(blockIdx.x) * blockDim.x + threadIdx.x;  // q * C + c
  if (e >= 3 * C) return;
  float acc = 0.f;
  for (int p = 0; p < partials; ++p) acc += partial[long(p) * 3 * C + e];
  T* out = e < C ? da0 : e < 2 * C ? dk_k : dk_a;
  store(out + e % C, acc);
}

inline int kk_pre_row_blocks(long rows) { return int((rows + kKkRowsPerBlock - 1) / kKkRowsPerBlock); }

inline bool kk_pre_shape_ok(long rows, int C, int H) {
  const int N = H > 0 ? C / H : 0;
  return rows > 0 && H > 0 && N * H == C && N >= 1 && N <= 1024 && (N & (N - 1)) == 0 &&
         kk_pre_row_blocks(rows) <= 65535;
}

template <typename T>
cudaError_t launch_kk_pre_forward(long rows, int C, int H, const void* k, const void* a_in, const void* a0,
                                  const void* k_k, const void* k_a, void* k_out, void* neg_kk, void* kk_a,
                                  cudaStream_t stream) {
  if (!kk_pre_shape_ok(rows, C, H)) return cudaErrorInvalidValue;
  return LAUNCH_KERNEL(kk_pre_forward_kernel<T>, dim3(unsigned(H), unsigned(kk_pre_row_blocks(rows))),
                       dim3(unsigned(C / H)), stream, rows, C, static_cast<const T*>(k),
                       static_cast<const T*>(a_in), static_cast<const T*>(a0), static_cast<const T*>(k_k),
                       static_cast<const T*>(k_a), static_cast<T*>(k_out), static_cast<T*>(neg_kk),
                       static_cast<T*>(kk_a));
}

// `partial`: float [kk_pre_row_blocks(rows) * 3 * C] of scratch.
template <typename T>
cudaError_t launch_kk_pre_backward(long rows, int C, int H, const void* k, const void* a_in, const void* a0,
                                   const void* k_k, const void* k_a, const void* dk_out, const void* dneg,
                                   const void* dkka, void* dk, void* da_in, void* da0, void* dk_k, void* dk_a,
                                   float* partial, cudaStream_t stream) {
  if (!kk_pre_shape_ok(rows, C, H)) return cudaErrorInvalidValue;
  const int blocks = kk_pre_row_blocks(rows);
  const cudaError_t err = LAUNCH_KERNEL(
      kk_pre_backward_kernel<T>, dim3(unsigned(H), unsigned(blocks)), dim3(unsigned(C / H)), stream, rows, C,
      static_cast<const T*>(k), static_cast<const T*>(a_in), static_cast<const T*>(a0), static_cast<const T*>(k_k),
      static_cast<const T*>(k_a), static_cast<const T*>(dk_out), static_cast<const T*>(dneg),
      static_cast<const T*>(dkka), static_cast<T*>(dk), static_cast<T*>(da_in), partial);
  if (err != cudaSuccess) return err;
  return LAUNCH_KERNEL(kk_pre_param_sum_kernel<T>, dim3(blocks_for(3L * C)), dim3(kThreadsPerBlock), stream, blocks, C,
                       static_cast<const float*>(partial), static_cast<T*>(da0), static_cast<T*>(dk_k),
                       static_cast<T*>(dk_a));
}

}  // namespace
}  // namespace rwkv7_cuda
