// cross_entropy_l2wrap's CUDA kernels and launchers (math in cross_entropy_l2wrap_cpu.cpp, the
// reference they are tested against). One block of 256 threads per row of logits, striding over
// V; max, sum and argmax are block reductions. The mean over rows is a second, one-block pass
// (fixed order: deterministic). dloss is read on the device, so the backward needs no host sync.
//
// Device code only: the includer provides the CUDA environment and LAUNCH_KERNEL.
#pragma once

#include "../cuda_common.cuh"

namespace rwkv7_cuda {
namespace {

constexpr int kCeThreads = 256;

// The row's maximum and sum_v exp(x_v - max), returned to every thread of the block; with
// `argmax` not null, also the first index holding the maximum (found in the same pass as the sum).
template <typename T>
__device__ inline void row_stats(int V, const T* x, float* buf, float* max_out, float* sum_out, int* argmax) {
  float mx = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, load(x + v));
  mx = block_max(mx, buf);
  float s = 0.f, first = -float(V);  // -(first index holding the max), as a max-reduction
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    const float xv = load(x + v);
    s += __expf(xv - mx);
    if (argmax != nullptr && xv == mx && -float(v) > first) first = -float(v);
  }
  *max_out = mx;
  *sum_out = block_sum(s, buf);
  if (argmax != nullptr) *argmax = int(-block_max(first, buf));
}

// row_loss[m] = logsumexp(logits[m]) - logits[m, t_m]  (NaN for a target outside [0, V))
template <typename T>
__global__ void ce_row_loss_kernel(int V, const T* __restrict__ logits, const long long* __restrict__ targets,
                                   float* __restrict__ row_loss) {
  __shared__ float buf[kCeThreads];
  const long m = blockIdx.x;
  const T* x = logits + m * V;
  float mx, s;
  row_stats(V, x, buf, &mx, &s, nullptr);
  if (threadIdx.x == 0) {
    const long long t = targets[m];
    row_loss[m] = (t >= 0 && t < V) ? __logf(s) + mx - load(x + t) : NAN;
  }
}

__global__ void ce_mean_kernel(long M, const float* __restrict__ row_loss, float* __restrict__ loss) {
  __shared__ float buf[kCeThreads];
  float s = 0.f;
  for (long m = threadIdx.x; m < M; m += blockDim.x) s += row_loss[m];
  s = block_sum(s, buf);
  if (threadIdx.x == 0) *loss = s / float(M);
}

template <typename T>
__global__ void ce_backward_kernel(long M, int V, const T* __restrict__ logits, const long long* __restrict__ targets,
                                   const float* __restrict__ dloss, T* __restrict__ dlogits) {
  __shared__ float buf[kCeThreads];
  const long m = blockIdx.x;
  const T* x = logits + m * V;
  float mx, s;
  int argmax;
  row_stats(V, x, buf, &mx, &s, &argmax);
  const long long t = targets[m];
  const float scale = *dloss / float(M), inv_s = 1.f / s;
  for (int v = threadIdx.x; v < V; v += blockDim.x) {
    float g = __expf(load(x + v) - mx) * inv_s;
    if (v == t) g -= 1.f;
    if (v == argmax) g += 1e-4f * mx;
    store(dlogits + m * V + v, g * scale);
  }
}

template <typename T>
cudaError_t launch_cross_entropy_l2wrap_forward(long M, int V, const void* logits, const long long* targets,
                                                float* row_loss, float* loss, cudaStream_t stream) {
  if (M < 1 || V < 1 || M > 2147483647L) return cudaErrorInvalidValue;
  const cudaError_t err = LAUNCH_KERNEL(ce_row_loss_kernel<T>, dim3(unsigned(M)), dim3(kCeThreads), stream, V,
                                        static_cast<const T*>(logits), targets, row_loss);
  if (err != cudaSuccess) return err;
  return LAUNCH_KERNEL(ce_mean_kernel, dim3(1), dim3(kCeThreads), stream, M, static_cast<const float*>(row_loss), loss);
}

template <typename T>
cudaError_t launch_cross_entropy_l2wrap_backward(long M, int V, const void* logits, const long long* targets,
                                                 const float* dloss, void* dlogits, cudaStream_t stream) {
  if (M < 1 || V < 1 || M > 2147483647L) return cudaErrorInvalidValue;
  return LAUNCH_KERNEL(ce_backward_kernel<T>, dim3(unsigned(M)), dim3(kCeThreads), stream, M, V,
                       static_cast<const T*>(logits), targets, dloss, static_cast<T*>(dlogits));
}

}  // namespace
}  // namespace rwkv7_cuda
