// token_shift_mix's CUDA kernels and launchers (the math is in token_shift_mix_cpu.cpp, the
// reference they are tested against). All arithmetic in float; one rounding per stored value.
//
// Device code only: the includer provides the CUDA environment (token_shift_mix_cuda_kernels.cu
// for nvcc, tests/cuda_emu/cuda_emu.h for the CPU emulation) and LAUNCH_KERNEL.
#pragma once

#include "../cuda_common.cuh"

namespace rwkv7_cuda {
namespace {

constexpr int kMixMaxLerps = 8;
constexpr int kMixRowsPerPartial = 64;  // rows of [B*T, C] summed by one block of the dmix pass

// One thread per element e = (b*T + t)*C + c of x; writes all n outputs of that element.
template <typename T>
__global__ void token_shift_mix_forward_kernel(long rows, int Tlen, int C, int n, const T* __restrict__ x,
                                               const T* __restrict__ mix, T* __restrict__ out) {
  const long e = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= rows * C) return;
  const int c = int(e % C);
  const bool first = (e / C) % Tlen == 0;
  const float xc = load(x + e);
  const float xx = (first ? 0.f : load(x + e - C)) - xc;
  for (int j = 0; j < n; ++j) store(out + j * rows * C + e, xc + xx * load(mix + j * C + c));
}

// dx: one thread per element; dx[t] = sum_j dout[j,t] (1 - mix[j]) + sum_j dout[j,t+1] mix[j].
template <typename T>
__global__ void token_shift_mix_dx_kernel(long rows, int Tlen, int C, int n, const T* __restrict__ mix,
                                          const T* __restrict__ dout, T* __restrict__ dx) {
  const long e = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= rows * C) return;
  const int c = int(e % C);
  const bool last = (e / C) % Tlen == Tlen - 1;
  float acc = 0.f;
  for (int j = 0; j < n; ++j) {
    const float m = load(mix + j * C + c);
    acc += load(dout + j * rows * C + e) * (1.f - m);
    if (!last) acc += load(dout + j * rows * C + e + C) * m;
  }
  store(dx + e, acc);
}

// dmix, first pass: block (cx, p) sums rows [p*64, p*64+64) for channels cx*256 + threadIdx.x:
//   partial[p][j][c] = sum_rows dout[j,row,c] * xx[row,c]
template <typename T>
__global__ void token_shift_mix_dmix_partial_kernel(long rows, int Tlen, int C, int n, const T* __restrict__ x,
                                                    const T* __restrict__ dout, float* __restrict__ partial) {
  const int c = int(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float acc[kMixMaxLerps];
  for (int j = 0; j < n; ++j) acc[j] = 0.f;
  long row_begin, row_end;
  rows_of_block(rows, kMixRowsPerPartial, blockIdx.y, &row_begin, &row_end);
  for (long row = row_begin; row < row_end; ++row) {
    const long e = row * C + c;
    const float xc = load(x + e);
    const float xx = (row % Tlen == 0 ? 0.f : load(x + e - C)) - xc;
    for (int j = 0; j < n; ++j) acc[j] += load(dout + j * rows * C + e) * xx;
  }
  for (int j = 0; j < n; ++j) partial[(long(blockIdx.y) * n + j) * C + c] = acc[j];
}

inline int token_shift_mix_partials(long rows) { return int((rows + kMixRowsPerPartial - 1) / kMixRowsPerPartial); }

template <typename T>
cudaError_t launch_token_shift_mix_forward(int B, int Tlen, int C, int n, const void* x, const void* mix, void* out,
                                           cudaStream_t stream) {
  if (B < 1 || Tlen < 1 || C < 1 || n < 1 || n > kMixMaxLerps) return cudaErrorInvalidValue;
  const long rows = long(B) * Tlen;
  return LAUNCH_KERNEL(token_shift_mix_forward_kernel<T>, dim3(blocks_for(rows * C)), dim3(kThreadsPerBlock), stream,
                       rows, Tlen, C, n, static_cast<const T*>(x), static_cast<const T*>(mix), static_cast<T*>(out));
}

// `partial`: float [token_shift_mix_partials(B*T), n, C] of scratch.
template <typename T>
cudaError_t launch_token_shift_mix_backward(int B, int Tlen, int C, int n, const void* x, const void* mix,
                                            const void* dout, void* dx, void* dmix, float* partial,
                                            cudaStream_t stream) {
  if (B < 1 || Tlen < 1 || C < 1 || n < 1 || n > kMixMaxLerps) return cudaErrorInvalidValue;
  const long rows = long(B) * Tlen;
  const int partials = token_shift_mix_partials(rows);
  if (partials > 65535) return cudaErrorInvalidValue;  // gridDim.y of the dmix pass
  cudaError_t err = LAUNCH_KERNEL(token_shift_mix_dx_kernel<T>, dim3(blocks_for(rows * C)), dim3(kThreadsPerBlock),
                                  stream, rows, Tlen, C, n, static_cast<const T*>(mix), static_cast<const T*>(dout),
                                  static_cast<T*>(dx));
  if (err != cudaSuccess) return err;
  err = LAUNCH_KERNEL(token_shift_mix_dmix_partial_kernel<T>, dim3(blocks_for(C), unsigned(partials)),
                      dim3(kThreadsPerBlock), stream, rows, Tlen, C, n, static_cast<const T*>(x),
                      static_cast<const T*>(dout), partial);
  if (err != cudaSuccess) return err;
  return launch_sum_partials<T>(partials, long(n) * C, n * C, partial, dmix, stream);  // dmix [n, C]
}

}  // namespace
}  // namespace rwkv7_cuda
