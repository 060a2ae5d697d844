// CUDA's execution model emulated on the CPU, so that the project's `__global__` kernels run (and
// are tested) on machines without a GPU. Include this instead of the CUDA headers, then the
// kernel file (`*.cuh`); the kernel bodies compile unchanged. docs/testing.md has the full story.
//
// What it models:
//   - a launch `LAUNCH_KERNEL(kernel, grid, block, stream, args...)` runs every block of the grid,
//     one block after another; the threads of a block are real std::threads, run concurrently
//   - threadIdx / blockIdx / blockDim / gridDim as thread-local variables
//   - __shared__ as one copy per kernel (a function-local static): correct because blocks never
//     overlap in time, so a block sees only its own shared memory
//   - __syncthreads() as a barrier of the block's threads (mutex + condition variable, which
//     ThreadSanitizer understands: a missing barrier shows up as a data race)
//   - the fast-math intrinsics nvcc's --use_fast_math produces, as float code with the same
//     formula (__expf(x) = 2^(x log2 e), as PTX ex2.approx computes it), and a bf16 type with
//     round-to-nearest-even conversion
//
// What it does not model (a kernel that depends on these needs a CPU fallback and its own test):
//   - warp-synchronous code: __shfl_*, __ballot, warp-level reductions, implicit lock-step
//   - memory ordering beyond what barriers give (fences, atomics' orderings, volatile tricks)
//   - timing, occupancy, bank conflicts, register limits: nothing here says a kernel is fast
//   - the exact rounding of the hardware's approximate instructions (ex2.approx, rcp.approx):
//     results agree with a GPU to float rounding, not bit for bit
#pragma once

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

// ---- the language: qualifiers become plain C++ ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static  // one copy per kernel; valid because blocks run one at a time
#define __launch_bounds__(...)  // a register budget for ptxas: nothing to emulate

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

// ---- the runtime's error codes, as far as kernels and launchers use them ----
using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
constexpr cudaError_t cudaErrorInvalidValue = 1;
constexpr cudaError_t cudaErrorInvalidConfiguration = 9;
using cudaStream_t = void*;

// ---- bf16: the bits of a float's upper half, rounded to nearest even ----
struct __nv_bfloat16 {
  uint16_t bits;
};

inline float __bfloat162float(__nv_bfloat16 h) {
  const uint32_t u = uint32_t(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return {uint16_t((u >> 16) | 0x40)};  // stays a (quiet) NaN
  u += 0x7FFFu + ((u >> 16) & 1u);                           // round half to even
  return {uint16_t(u >> 16)};
}

// ---- fast-math intrinsics ----
// (glibc declares its own __expf/__logf; ours get other names and the kernels' spelling by macro)
inline float cuda_emu_expf(float x) { return std::exp2f(x * 1.4426950408889634f); }
inline float cuda_emu_logf(float x) { return std::log2f(x) * 0.69314718055994531f; }
inline float cuda_emu_fdividef(float a, float b) { return a / b; }
#define __expf cuda_emu_expf
#define __logf cuda_emu_logf
#define __fdividef cuda_emu_fdividef

namespace cuda_emu {

// A reusable barrier for the threads of one block. A thread that waits longer than the timeout
// means a barrier that not every thread reaches (divergent __syncthreads): that is reported and
// the process stops, instead of hanging the test run.
class BlockBarrier {
 public:
  explicit BlockBarrier(int threads) : threads_(threads) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t generation = generation_;
    if (++arrived_ == threads_) {
      arrived_ = 0;
      ++generation_;
      all_arrived_.notify_all();
      return;
    }
    if (!all_arrived_.wait_for(lock, std::chrono::seconds(60),
                               [&] { return generation != generation_; })) {
      std::fprintf(stderr, "cuda_emu: __syncthreads() not reached by every thread of block (%u,%u,%u)\n",
                   blockIdx.x, blockIdx.y, blockIdx.z);
      std::abort();
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable all_arrived_;
  const int threads_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
};

inline thread_local BlockBarrier* current_barrier = nullptr;

// Function-local statics (__shared__) are shared by every launch of a kernel, so launches must
// not overlap: one at a time per process.
inline std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}

// Runs kernel(args...) over grid x block, as <<<grid, block>>> would (no dynamic shared memory).
template <typename... Params, typename... Args>
cudaError_t launch(dim3 grid, dim3 block, void (*kernel)(Params...), Args... args) {
  const unsigned threads = block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || grid.x * grid.y * grid.z == 0 || grid.y > 65535 || grid.z > 65535)
    return cudaErrorInvalidConfiguration;
  std::lock_guard<std::mutex> one_launch_at_a_time(launch_mutex());
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        BlockBarrier barrier{int(threads)};
        std::vector<std::thread> team;
        team.reserve(threads);
        for (unsigned t = 0; t < threads; ++t)
          team.emplace_back([&, t] {
            threadIdx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
            blockIdx = dim3(bx, by, bz);
            blockDim = block;
            gridDim = grid;
            current_barrier = &barrier;
            kernel(args...);  // the launch's own argument types: no casts nvcc would not make
          });
        for (auto& th : team) th.join();
      }
  return cudaSuccess;
}

}  // namespace cuda_emu

inline void __syncthreads() { cuda_emu::current_barrier->arrive_and_wait(); }

#define LAUNCH_KERNEL(kernel, grid, block, stream, ...) \
  ((void)(stream), ::cuda_emu::launch((grid), (block), kernel, __VA_ARGS__))
