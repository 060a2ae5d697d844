// Device helpers every op's kernels share: loads and stores that compute in float whatever the
// tensor's dtype, and block-wide reductions through shared memory (no warp shuffles, so that the
// CPU emulation in tests/cuda_emu runs them too).
//
// Device code only, no includes: the includer provides the CUDA environment (nvcc's, or the
// emulation's), as for every *_kernels.cuh.
#pragma once

namespace rwkv7_cuda {
namespace {

__device__ inline float load(const float* p) { return *p; }
__device__ inline float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ inline void store(float* p, float x) { *p = x; }
__device__ inline void store(__nv_bfloat16* p, float x) { *p = __float2bfloat16_rn(x); }

// The sum of `x` over the block's threads, returned to every thread. blockDim.x must be a power
// of two; `buf` is the kernel's __shared__ float[blockDim.x]. The first barrier lets a second
// call reuse `buf` only after every thread has read the first result.
__device__ inline float block_sum(float x, float* buf) {
  const int i = threadIdx.x;
  __syncthreads();
  buf[i] = x;
  __syncthreads();
  for (int s = int(blockDim.x) / 2; s > 0; s >>= 1) {
    if (i < s) buf[i] += buf[i + s];
    __syncthreads();
  }
  return buf[0];
}

// The maximum of `x` over the block's threads; as block_sum.
__device__ inline float block_max(float x, float* buf) {
  const int i = threadIdx.x;
  __syncthreads();
  buf[i] = x;
  __syncthreads();
  for (int s = int(blockDim.x) / 2; s > 0; s >>= 1) {
    if (i < s) buf[i] = buf[i] > buf[i + s] ? buf[i] : buf[i + s];
    __syncthreads();
  }
  return buf[0];
}

// Elementwise kernels: one thread per element, this many per block.
constexpr int kThreadsPerBlock = 256;
inline unsigned blocks_for(long elements) { return unsigned((elements + kThreadsPerBlock - 1) / kThreadsPerBlock); }

}  // namespace
}  // namespace rwkv7_cuda
