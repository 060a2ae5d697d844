// token_shift_mix's CUDA kernels on the CPU (tests/cuda_emu), held against the composite lerps
// the model computes without fused ops: x + (shift(x) - x) * x_j for each coefficient.
#include "tests/cuda_emu/cuda_emu.h"  // the CUDA environment first: the kernels compile against it
#include "ops/token_shift_mix/token_shift_mix_kernels.cuh"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/cuda_emu/composite_check.h"

namespace rwkv7 {
namespace {

using testing::Tensors;

Tensors composite(const Tensors& in) {  // in: x [B,T,C], mix [n,C]
  const at::Tensor& x = in[0];
  const at::Tensor xx = at::constant_pad_nd(x, {0, 0, 1, -1}) - x;
  Tensors outs;
  for (int64_t j = 0; j < in[1].size(0); ++j) outs.push_back(x + xx * in[1][j]);
  return {at::stack(outs)};
}

Tensors kernel(const Tensors& in, const Tensors& dout, at::ScalarType dtype) {
  const at::Tensor &x = in[0], &mix = in[1];
  const int B = int(x.size(0)), T = int(x.size(1)), C = int(x.size(2)), n = int(mix.size(0));
  at::Tensor out = at::empty({n, B, T, C}, x.options()), dx = at::empty_like(x), dmix = at::empty_like(mix);
  at::Tensor partial = at::full({long(rwkv7_cuda::token_shift_mix_partials(long(B) * T)) * n * C}, NAN, at::kFloat);
  auto launch = [&](auto element) {
    using E = decltype(element);
    EXPECT_EQ(rwkv7_cuda::launch_token_shift_mix_forward<E>(B, T, C, n, x.data_ptr(), mix.data_ptr(), out.data_ptr(),
                                                            nullptr),
              cudaSuccess);
    EXPECT_EQ(rwkv7_cuda::launch_token_shift_mix_backward<E>(B, T, C, n, x.data_ptr(), mix.data_ptr(),
                                                             dout[0].data_ptr(), dx.data_ptr(), dmix.data_ptr(),
                                                             partial.data_ptr<float>(), nullptr),
              cudaSuccess);
  };
  testing::with_element_type(dtype, launch);
  return {out.to(at::kDouble), dx.to(at::kDouble), dmix.to(at::kDouble)};
}

void check(int B, int T, int C, int n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor x = at::randn({B, T, C}, gen, at::kDouble);
  const at::Tensor mix = at::rand({n, C}, gen, at::kDouble);
  const at::Tensor dout = at::randn({n, B, T, C}, gen, at::kDouble);
  testing::expect_kernel_matches_composite("mix B" + std::to_string(B) + " T" + std::to_string(T) + " C" + std::to_string(C) + " n" + std::to_string(n), {"out", "dx", "dmix"}, composite, kernel, {x, mix},
                                           {true, true}, {dout});
}

TEST(CudaEmu, TokenShiftMixSixLerpsMatchesComposite) {
  // 140 rows: three blocks of the dmix partial sums, the last one short; C = 48, not a multiple of the 256 threads of a block
  check(2, 70, 48, 6, 1);
}

TEST(CudaEmu, TokenShiftMixOneLerpMatchesComposite) { check(3, 5, 40, 1, 2); }

TEST(CudaEmu, TokenShiftMixLauncherRejectsBadShapes) {
  EXPECT_EQ(rwkv7_cuda::launch_token_shift_mix_forward<float>(1, 4, 8, 9, nullptr, nullptr, nullptr, nullptr),
            cudaErrorInvalidValue);  // n > 8
  EXPECT_EQ(rwkv7_cuda::launch_token_shift_mix_forward<float>(0, 4, 8, 1, nullptr, nullptr, nullptr, nullptr),
            cudaErrorInvalidValue);
}

}  // namespace
}  // namespace rwkv7
