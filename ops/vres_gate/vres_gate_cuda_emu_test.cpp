// vres_gate's CUDA kernels on the CPU (tests/cuda_emu), held against the composite value
// residual of the time mix: v + (v_first - v) * sigmoid(v0 + v_in).
#include "tests/cuda_emu/cuda_emu.h"  // the CUDA environment first: the kernels compile against it
#include "ops/vres_gate/vres_gate_kernels.cuh"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "tests/cuda_emu/composite_check.h"

namespace rwkv7 {
namespace {

using testing::Tensors;

Tensors composite(const Tensors& in) { return {in[0] + (in[1] - in[0]) * at::sigmoid(in[3] + in[2])}; }

Tensors kernel(const Tensors& in, const Tensors& dout, at::ScalarType dtype) {
  const long rows = in[0].size(0) * in[0].size(1);
  const int C = int(in[0].size(2));
  at::Tensor out = at::empty_like(in[0]);
  Tensors g;
  for (const auto& t : in) g.push_back(at::empty_like(t));
  at::Tensor partial = at::full({long(rwkv7_cuda::vres_gate_partials(rows)) * C}, NAN, at::kFloat);
  const rwkv7_cuda::VresGateInputs inputs{in[0].data_ptr(), in[1].data_ptr(), in[2].data_ptr(), in[3].data_ptr()};
  const rwkv7_cuda::VresGateForwardArgs forward{inputs, out.data_ptr()};
  const rwkv7_cuda::VresGateBackwardArgs backward{
      inputs, dout[0].data_ptr(), {g[0].data_ptr(), g[1].data_ptr(), g[2].data_ptr(), g[3].data_ptr()}};
  auto launch = [&](auto element) {
    using E = decltype(element);
    EXPECT_EQ(rwkv7_cuda::launch_vres_gate_forward<E>(rows, C, forward, nullptr), cudaSuccess);
    EXPECT_EQ(rwkv7_cuda::launch_vres_gate_backward<E>(rows, C, backward, partial.data_ptr<float>(), nullptr),
              cudaSuccess);
  };
  testing::with_element_type(dtype, launch);
  Tensors result{out.to(at::kDouble)};
  for (auto& t : g) result.push_back(t.to(at::kDouble));
  return result;
}

TEST(CudaEmu, VresGateMatchesComposite) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const int B = 2, T = 70, C = 48;  // 140 rows: three partial blocks of dv0, the last one short
  auto randn = [&](std::vector<int64_t> s) { return at::randn(s, gen, at::kDouble); };
  testing::expect_kernel_matches_composite("vres_gate", {"out", "dv", "dv_first", "dv_in", "dv0"}, composite, kernel,
                                           {randn({B, T, C}), randn({B, T, C}), randn({B, T, C}), randn({C})},
                                           {true, true, true, true}, {randn({B, T, C})});
}

}  // namespace
}  // namespace rwkv7
