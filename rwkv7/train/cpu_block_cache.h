// A caching CPU allocator for the training step, the CPU's counterpart of LibTorch's CUDA caching
// allocator. A step allocates and frees the same large blocks every time (activations, gradients,
// logits, the fp32 copies of bf16 gradients). glibc hands blocks over 32 MiB straight back to the
// kernel, so each step faulted in and zeroed about 2 GB of fresh pages again: 18% of the bf16
// L12-D768 step was spent in the kernel (perf, docs/benchmarks.md). Here a freed block of 1 MiB or
// more is kept, its size rounded up to 2 MiB, and serves the next request it fits without wasting
// more than a quarter of itself (the smallest such block first); smaller ones go to LibTorch's own
// allocator. Blocks are 2 MiB aligned and advised as huge pages.
//
// The cache grows to about the step's peak and stays there (bench's peak RSS of the bf16 L12-D768
// step: 5.6 GiB against 5.0 without it). If a request misses while the idle blocks outweigh the most
// ever in use at once (shapes that keep changing), the idle blocks are given back first, so the cache
// never holds more than twice its peak in use plus the request. Only the training and bench commands
// install it (config key cpu_cache).
#pragma once
#include <cstdint>

namespace rwkv7 {

struct CpuCacheStats {
  int64_t in_use_bytes = 0;  // blocks handed out by the cache and not yet freed
  int64_t idle_bytes = 0;    // freed blocks kept for reuse
  int64_t peak_in_use_bytes = 0;
  int64_t hits = 0, misses = 0;
};

// Makes the cache LibTorch's CPU allocator for the rest of the process (idempotent). Tensors
// allocated before keep their own allocator.
void install_cpu_block_cache();
bool cpu_block_cache_installed();
// Gives every idle block back to the system (bench does, before it measures the steps' peak).
void release_idle_cpu_blocks();
CpuCacheStats cpu_block_cache_stats();

}  // namespace rwkv7
