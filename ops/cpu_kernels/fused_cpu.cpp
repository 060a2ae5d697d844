// The instruction set's table of fused CPU loops, and the block sums.
#include "fused_cpu.h"

#include <ATen/ops/zeros.h>
#include <c10/util/accumulate.h>

#include "cpu_isa.h"

namespace rwkv7_ops::fused_cpu {

bool runs_fast(const at::Tensor& t) {
  return t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16;
}

const Kernels& kernels() {
  switch (cpu_isa_in_use()) {
    case CpuIsa::kAvx512: return avx512::kernels;
    case CpuIsa::kAvx2: return avx2::kernels;
    case CpuIsa::kBaseline: break;
  }
  return baseline::kernels;
}

at::Tensor sum_of_blocks(const at::Tensor& partial) {
  const int64_t blocks = partial.size(0), n = c10::multiply_integers(partial.sizes().slice(1));
  at::Tensor sum = at::zeros({n}, partial.options());
  float* s = sum.mutable_data_ptr<float>();
  const float* x = partial.const_data_ptr<float>();
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t i = 0; i < n; ++i) s[i] += x[b * n + i];
  return sum;
}

}  // namespace rwkv7_ops::fused_cpu
