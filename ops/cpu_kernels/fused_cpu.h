// The ATen side of the fused ops' one-pass CPU kernels (fused_cpu_kernels.h): which tensors they
// take, the instruction set's table, and the blocks run in parallel with at::parallel_for.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <vector>

#include "fused_cpu_kernels.h"

namespace rwkv7_ops::fused_cpu {

// float32 and bfloat16 tensors run the one-pass kernels; float64 (and half) the composite, which
// is the reference the kernels are tested against.
bool runs_fast(const at::Tensor& t);

// The loops of the instruction set in use (cpu_isa.h).
const Kernels& kernels();

// A tensor's memory for the loops (the caller made it contiguous).
inline const void* in(const at::Tensor& t) { return t.const_data_ptr(); }
inline void* out(at::Tensor& t) { return t.mutable_data_ptr(); }

inline int64_t row_blocks(int64_t rows) { return (rows + kRowsPerBlock - 1) / kRowsPerBlock; }
inline int64_t row_scratch(int64_t C) { return kRowScratchRows * C; }

// Every block of [0, blocks) through `kernel`, in parallel; each thread's scratch is
// `scratch_floats` floats (fused_cpu_kernels.h says how many each op needs).
template <typename P>
void run_blocks(BlockKernel<P> kernel, const P& p, int64_t blocks, int64_t scratch_floats) {
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(static_cast<size_t>(scratch_floats));
    for (int64_t block = begin; block < end; ++block) kernel(p, block, scratch.data());
  });
}

// The blocks' partial sums [blocks, per_block] added in block order (the same on any number of
// threads): a float tensor of per_block values.
at::Tensor sum_of_blocks(const at::Tensor& partial);

}  // namespace rwkv7_ops::fused_cpu
