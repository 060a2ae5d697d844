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

__device__ inline float fast_sigmoid(float x) { return 1.f / (1.f + __expf(-x)); }

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

// The rows [*begin, *end) of `rows` that row block `block` of `per_block` rows covers.
__device__ inline void rows_of_block(long rows, long per_block, long block, long* begin, long* end) {
  *begin = block * per_block;
  *end = *begin + per_block < rows ? *begin + per_block : rows;
}

// Ops that work per head of one row (a norm over the head's N channels) run block (h, p) over head
// h of rows [p*32, p*32 + 32), one thread per channel: N = C / H must be a power of two <= 1024
// (block_sum), and the row blocks must fit gridDim.y.
constexpr int kHeadRowsPerBlock = 32;
inline int head_row_blocks(long rows) { return int((rows + kHeadRowsPerBlock - 1) / kHeadRowsPerBlock); }
inline bool head_blocks_shape_ok(long rows, int C, int H) {
  const int N = H > 0 ? C / H : 0;
  return rows > 0 && H > 0 && N * H == C && N >= 1 && N <= 1024 && (N & (N - 1)) == 0 &&
         head_row_blocks(rows) <= 65535;
}

// The second pass of a per-channel gradient: out[i] = sum_p partial[p * stride + i], i < width,
// added in the order of p (deterministic: no atomics). The first pass, in each op, writes one
// float partial sum per row block.
template <typename T>
__global__ void sum_partials_kernel(int partials, long stride, int width, const float* __restrict__ partial,
                                    T* __restrict__ out) {
  const int i = int(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= width) return;
  float acc = 0.f;
  for (int p = 0; p < partials; ++p) acc += partial[long(p) * stride + i];
  store(out + i, acc);
}

template <typename T>
cudaError_t launch_sum_partials(int partials, long stride, int width, const float* partial, void* out,
                                cudaStream_t stream) {
  return LAUNCH_KERNEL(sum_partials_kernel<T>, dim3(blocks_for(width)), dim3(kThreadsPerBlock), stream, partials,
                       stride, width, partial, static_cast<T*>(out));
}

// Several [C] gradients whose per-block partials lie side by side, partial[block][q][C] (q < n): one
// sum per gradient into outs[q] (kk_pre's da0 dk_k dk_a, lnx_rkvres_xg's dr_k dln_w dln_b).
template <typename T>
cudaError_t launch_sum_partial_vectors(int blocks, int n, int C, const float* partial, void* const* outs,
                                       cudaStream_t stream) {
  for (int q = 0; q < n; ++q) {
    const cudaError_t err = launch_sum_partials<T>(blocks, long(n) * C, C, partial + long(q) * C, outs[q], stream);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

}  // namespace
}  // namespace rwkv7_cuda
