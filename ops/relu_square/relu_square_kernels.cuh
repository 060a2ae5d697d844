// relu_square's CUDA kernels and launchers (math in relu_square_cpu.cpp): one thread per element.
//
// Device code only: the includer provides the CUDA environment and LAUNCH_KERNEL.
#pragma once

#include "../cuda_common.cuh"

namespace rwkv7_cuda {
namespace {

template <typename T>
__global__ void relu_square_forward_kernel(long n, const T* __restrict__ x, T* __restrict__ out) {
  const long e = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  const float r = load(x + e) > 0.f ? load(x + e) : 0.f;
  store(out + e, r * r);
}

template <typename T>
__global__ void relu_square_backward_kernel(long n, const T* __restrict__ x, const T* __restrict__ dout,
                                            T* __restrict__ dx) {
  const long e = long(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  const float r = load(x + e) > 0.f ? load(x + e) : 0.f;
  store(dx + e, 2.f * r * load(dout + e));
}

template <typename T>
cudaError_t launch_relu_square_forward(long n, const void* x, void* out, cudaStream_t stream) {
  if (n < 1) return cudaErrorInvalidValue;
  return LAUNCH_KERNEL(relu_square_forward_kernel<T>, dim3(blocks_for(n)), dim3(kThreadsPerBlock), stream, n,
                       static_cast<const T*>(x), static_cast<T*>(out));
}

template <typename T>
cudaError_t launch_relu_square_backward(long n, const void* x, const void* dout, void* dx, cudaStream_t stream) {
  if (n < 1) return cudaErrorInvalidValue;
  return LAUNCH_KERNEL(relu_square_backward_kernel<T>, dim3(blocks_for(n)), dim3(kThreadsPerBlock), stream, n,
                       static_cast<const T*>(x), static_cast<const T*>(dout), static_cast<T*>(dx));
}

}  // namespace
}  // namespace rwkv7_cuda
