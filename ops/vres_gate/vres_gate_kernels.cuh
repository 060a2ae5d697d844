// vres_gate's CUDA kernels and launchers (math in vres_gate_cpu.cpp, the reference they are
// tested against). Elementwise, one thread per element; dv0 is summed over rows in two passes
// (per-block partials in float, then their sum in a fixed order: deterministic, no atomics).
//
// Device code only: the includer provides the CUDA environment and LAUNCH_KERNEL.
#pragma once

#include "../cuda_common.cuh"
#include "vres_gate_launch_args.h"

namespace rwkv7_cuda {
namespace {

constexpr int kVresRowsPerPartial = 64;

template <typename T>
__global__ void vres_gate_forward_kernel(long n, int C, const T* __restrict__ v, const T* __restrict__ v_first,
                                         const T* __restrict__ v_in, const T* __restrict__ v0, T* __restrict__ out) {
  const long e = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  const float s = fast_sigmoid(load(v0 + e % C) + load(v_in + e)), ve = load(v + e);
  store(out + e, ve + (load(v_first + e) - ve) * s);
}

template <typename T>
__global__ void vres_gate_backward_kernel(long n, int C, const T* __restrict__ v, const T* __restrict__ v_first,
                                          const T* __restrict__ v_in, const T* __restrict__ v0,
                                          const T* __restrict__ dout, T* __restrict__ dv, T* __restrict__ dv_first,
                                          T* __restrict__ dv_in) {
  const long e = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  const float s = fast_sigmoid(load(v0 + e % C) + load(v_in + e)), d = load(dout + e);
  store(dv + e, d * (1.f - s));
  store(dv_first + e, d * s);
  store(dv_in + e, d * (load(v_first + e) - load(v + e)) * s * (1.f - s));
}

// Block (cx, p): channels cx*256 + threadIdx.x, rows [p*64, p*64 + 64): partial[p][c] = sum dv_in.
template <typename T>
__global__ void vres_gate_dv0_partial_kernel(long rows, int C, const T* __restrict__ v, const T* __restrict__ v_first,
                                             const T* __restrict__ v_in, const T* __restrict__ v0,
                                             const T* __restrict__ dout, float* __restrict__ partial) {
  const int c = int(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const float bias = load(v0 + c);
  float acc = 0.f;
  long begin, end;
  rows_of_block(rows, kVresRowsPerPartial, blockIdx.y, &begin, &end);
  for (long row = begin; row < end; ++row) {
    const long e = row * C + c;
    const float s = fast_sigmoid(bias + load(v_in + e));
    acc += load(dout + e) * (load(v_first + e) - load(v + e)) * s * (1.f - s);
  }
  partial[long(blockIdx.y) * C + c] = acc;
}

inline int vres_gate_partials(long rows) { return int((rows + kVresRowsPerPartial - 1) / kVresRowsPerPartial); }

template <typename T>
cudaError_t launch_vres_gate_forward(long rows, int C, const VresGateForwardArgs& args, cudaStream_t stream) {
  if (rows < 1 || C < 1) return cudaErrorInvalidValue;
  const VresGateInputs& in = args.in;
  return LAUNCH_KERNEL(vres_gate_forward_kernel<T>, dim3(blocks_for(rows * C)), dim3(kThreadsPerBlock), stream,
                       rows * C, C, static_cast<const T*>(in.v), static_cast<const T*>(in.v_first),
                       static_cast<const T*>(in.v_in), static_cast<const T*>(in.v0), static_cast<T*>(args.out));
}

// `partial`: float [vres_gate_partials(rows) * C] of scratch.
template <typename T>
cudaError_t launch_vres_gate_backward(long rows, int C, const VresGateBackwardArgs& args, float* partial,
                                      cudaStream_t stream) {
  if (rows < 1 || C < 1 || vres_gate_partials(rows) > 65535) return cudaErrorInvalidValue;
  const VresGateInputs& in = args.in;
  const VresGateGrads& grad = args.grad;
  const int partials = vres_gate_partials(rows);
  cudaError_t err = LAUNCH_KERNEL(
      vres_gate_backward_kernel<T>, dim3(blocks_for(rows * C)), dim3(kThreadsPerBlock), stream, rows * C, C,
      static_cast<const T*>(in.v), static_cast<const T*>(in.v_first), static_cast<const T*>(in.v_in),
      static_cast<const T*>(in.v0), static_cast<const T*>(args.dout), static_cast<T*>(grad.dv),
      static_cast<T*>(grad.dv_first), static_cast<T*>(grad.dv_in));
  if (err != cudaSuccess) return err;
  err = LAUNCH_KERNEL(vres_gate_dv0_partial_kernel<T>, dim3(blocks_for(C), unsigned(partials)), dim3(kThreadsPerBlock),
                      stream, rows, C, static_cast<const T*>(in.v), static_cast<const T*>(in.v_first),
                      static_cast<const T*>(in.v_in), static_cast<const T*>(in.v0), static_cast<const T*>(args.dout),
                      partial);
  if (err != cudaSuccess) return err;
  return launch_sum_partials<T>(partials, C, C, partial, grad.dv0, stream);
}

}  // namespace
}  // namespace rwkv7_cuda
