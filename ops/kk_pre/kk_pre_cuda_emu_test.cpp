// kk_pre's CUDA kernels on the CPU (tests/cuda_emu), held against the composite code of the time
// mix: a = sigmoid(a0 + a_in), kk = normalize(k * k_k) per head, k * (1 + (a - 1) * k_a), -kk, kk * a.
#include "tests/cuda_emu/cuda_emu.h"  // the CUDA environment first: the kernels compile against it
#include "ops/kk_pre/kk_pre_kernels.cuh"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/cuda_emu/composite_check.h"

namespace rwkv7 {
namespace {

using testing::Tensors;

Tensors composite(const Tensors& in, int64_t H) {  // k, a_in, a0, k_k, k_a
  const at::Tensor &k = in[0], &a_in = in[1], &a0 = in[2], &k_k = in[3], &k_a = in[4];
  const int64_t B = k.size(0), T = k.size(1), C = k.size(2);
  const at::Tensor a = at::sigmoid(a0 + a_in);
  at::Tensor kk = (k * k_k).view({B, T, H, C / H});
  kk = (kk / kk.norm(2, -1, true).clamp_min(1e-12)).view({B, T, C});
  return {k * (1 + (a - 1) * k_a), -kk, kk * a};
}

Tensors kernel(const Tensors& in, const Tensors& dout, at::ScalarType dtype, int H) {
  const at::Tensor& k = in[0];
  const long rows = k.size(0) * k.size(1);
  const int C = int(k.size(2));
  Tensors out(3), grads(5);
  for (auto& t : out) t = at::empty_like(k);
  for (int i = 0; i < 5; ++i) grads[i] = at::empty_like(in[i]);
  at::Tensor partial = at::full({long(rwkv7_cuda::head_row_blocks(rows)) * 3 * C}, NAN, at::kFloat);
  const rwkv7_cuda::KkPreInputs inputs{in[0].data_ptr(), in[1].data_ptr(), in[2].data_ptr(), in[3].data_ptr(),
                                       in[4].data_ptr()};
  rwkv7_cuda::KkPreForwardArgs forward;
  forward.in = inputs;
  forward.out = {out[0].data_ptr(), out[1].data_ptr(), out[2].data_ptr()};
  rwkv7_cuda::KkPreBackwardArgs backward;
  backward.in = inputs;
  backward.dout = {dout[0].data_ptr(), dout[1].data_ptr(), dout[2].data_ptr()};
  backward.grad = {grads[0].data_ptr(), grads[1].data_ptr(), grads[2].data_ptr(), grads[3].data_ptr(),
                   grads[4].data_ptr()};
  auto launch = [&](auto element) {
    using E = decltype(element);
    EXPECT_EQ(rwkv7_cuda::launch_kk_pre_forward<E>(rows, C, H, forward, nullptr), cudaSuccess);
    EXPECT_EQ(rwkv7_cuda::launch_kk_pre_backward<E>(rows, C, H, backward, partial.data_ptr<float>(), nullptr),
              cudaSuccess);
  };
  testing::with_element_type(dtype, launch);
  Tensors result;
  for (auto& t : out) result.push_back(t.to(at::kDouble));
  for (auto& t : grads) result.push_back(t.to(at::kDouble));
  return result;
}

void check(int B, int T, int H, int N, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int C = H * N;
  auto randn = [&](std::vector<int64_t> s) { return at::randn(s, gen, at::kDouble); };
  Tensors in = {randn({B, T, C}), randn({B, T, C}), randn({C}), at::rand({C}, gen, at::kDouble) + 0.5,
                at::rand({C}, gen, at::kDouble)};
  const Tensors dout = {randn({B, T, C}), randn({B, T, C}), randn({B, T, C})};
  testing::expect_kernel_matches_composite(
      "kk_pre N" + std::to_string(N), {"k_out", "neg_kk", "kk_a", "dk", "da_in", "da0", "dk_k", "dk_a"},
      [H](const Tensors& t) { return composite(t, H); },
      [H](const Tensors& t, const Tensors& d, at::ScalarType dt) { return kernel(t, d, dt, H); }, in,
      {true, true, true, true, true}, dout);
}

// 70 rows: three row blocks, the last one short
TEST(CudaEmu, KkPreHeadSize64MatchesComposite) { check(2, 35, 2, 64, 3); }
TEST(CudaEmu, KkPreHeadSize128MatchesComposite) { check(1, 40, 1, 128, 4); }

TEST(CudaEmu, KkPreLauncherRejectsBadShapes) {
  EXPECT_EQ(rwkv7_cuda::launch_kk_pre_forward<float>(4, 96, 1, rwkv7_cuda::KkPreForwardArgs{}, nullptr),
            cudaErrorInvalidValue);  // N = 96: not a power of two
}

}  // namespace
}  // namespace rwkv7
