// lnx_rkvres_xg's CUDA kernels on the CPU (tests/cuda_emu), held against the composite code of the
// time mix's tail: ln_x (GroupNorm, one group per head), the bonus (sum_n r * k * r_k) * v, times g.
#include "tests/cuda_emu/cuda_emu.h"  // the CUDA environment first: the kernels compile against it
#include "ops/lnx_rkvres_xg/lnx_rkvres_xg_kernels.cuh"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/cuda_emu/composite_check.h"

namespace rwkv7 {
namespace {

using testing::Tensors;

constexpr double kLnxEps = 64e-5;  // ln_x's eps, as TimeMix builds it

Tensors composite(const Tensors& in, int64_t H) {  // y, r, k, v, r_k, g, ln_w, ln_b
  const at::Tensor &y = in[0], &r = in[1], &k = in[2], &v = in[3], &r_k = in[4], &g = in[5], &ln_w = in[6],
                   &ln_b = in[7];
  const int64_t B = y.size(0), T = y.size(1), C = y.size(2), N = C / H;
  auto heads = [&](const at::Tensor& t) { return t.reshape({B, T, H, N}); };
  at::Tensor x = at::group_norm(y.reshape({B * T, C}), H, ln_w, ln_b, kLnxEps).view({B, T, C});
  const at::Tensor rk = (heads(r) * heads(k) * r_k).sum(-1, true);
  x = x + (rk * heads(v)).view({B, T, C});
  return {x * g};
}

Tensors kernel(const Tensors& in, const Tensors& dout, at::ScalarType dtype, int H) {
  const at::Tensor& y = in[0];
  const long rows = y.size(0) * y.size(1);
  const int C = int(y.size(2));
  const float eps = float(kLnxEps);
  at::Tensor out = at::empty_like(y);
  Tensors grads(8);  // dy, dr, dk, dv, dr_k, dg, dln_w, dln_b
  for (int i = 0; i < 8; ++i) grads[i] = at::empty_like(in[i]);
  at::Tensor partial = at::full({long(rwkv7_cuda::head_row_blocks(rows)) * 3 * C}, NAN, at::kFloat);
  const rwkv7_cuda::LnxRkvresXgInputs inputs{in[0].data_ptr(), in[1].data_ptr(), in[2].data_ptr(),
                                              in[3].data_ptr(), in[4].data_ptr(), in[5].data_ptr(),
                                              in[6].data_ptr(), in[7].data_ptr()};
  const rwkv7_cuda::LnxRkvresXgForwardArgs forward{inputs, out.data_ptr()};
  const rwkv7_cuda::LnxRkvresXgBackwardArgs backward{
      inputs, dout[0].data_ptr(),
      {grads[0].data_ptr(), grads[1].data_ptr(), grads[2].data_ptr(), grads[3].data_ptr(), grads[4].data_ptr(),
       grads[5].data_ptr(), grads[6].data_ptr(), grads[7].data_ptr()}};
  auto launch = [&](auto element) {
    using E = decltype(element);
    EXPECT_EQ(rwkv7_cuda::launch_lnx_rkvres_xg_forward<E>(rows, C, H, eps, forward, nullptr), cudaSuccess);
    EXPECT_EQ(rwkv7_cuda::launch_lnx_rkvres_xg_backward<E>(rows, C, H, eps, backward, partial.data_ptr<float>(),
                                                           nullptr),
              cudaSuccess);
  };
  testing::with_element_type(dtype, launch);
  Tensors result = {out.to(at::kDouble)};
  for (auto& t : grads) result.push_back(t.to(at::kDouble));
  return result;
}

void check(int B, int T, int H, int N, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int C = H * N;
  auto randn = [&](std::vector<int64_t> s) { return at::randn(s, gen, at::kDouble); };
  // y off centre and wider than 1, so that the normalisation has a mean and a scale to remove
  const at::Tensor y = randn({B, T, C}) * 2 + 0.5;
  const at::Tensor r = randn({B, T, C}), k = randn({B, T, C}), v = randn({B, T, C}), g = randn({B, T, C});
  const at::Tensor r_k = randn({H, N}), ln_w = at::rand({C}, gen, at::kDouble) + 0.5, ln_b = randn({C});
  const Tensors in = {y, r, k, v, r_k, g, ln_w, ln_b};
  const Tensors dout = {randn({B, T, C})};
  testing::expect_kernel_matches_composite(
      "lnx_rkvres_xg N" + std::to_string(N), {"out", "dy", "dr", "dk", "dv", "dr_k", "dg", "dln_w", "dln_b"},
      [H](const Tensors& t) { return composite(t, H); },
      [H](const Tensors& t, const Tensors& d, at::ScalarType dt) { return kernel(t, d, dt, H); }, in,
      std::vector<bool>(8, true), dout);
}

// 70 rows: three row blocks, the last one short
TEST(CudaEmu, LnxRkvresXgHeadSize64MatchesComposite) { check(2, 20, 2, 64, 5); }
TEST(CudaEmu, LnxRkvresXgHeadSize128MatchesComposite) { check(1, 20, 1, 128, 6); }

TEST(CudaEmu, LnxRkvresXgLauncherRejectsBadShapes) {
  auto forward = [](long rows, int C, int H) {
    return rwkv7_cuda::launch_lnx_rkvres_xg_forward<float>(rows, C, H, 1e-5f, rwkv7_cuda::LnxRkvresXgForwardArgs{},
                                                           nullptr);
  };
  EXPECT_EQ(forward(4, 96, 1), cudaErrorInvalidValue);            // N = 96: not a power of two
  EXPECT_EQ(forward(4, 100, 3), cudaErrorInvalidValue);           // C not a multiple of H
  EXPECT_EQ(forward(0, 64, 1), cudaErrorInvalidValue);            // no rows
  EXPECT_EQ(forward(65536L * 32, 64, 1), cudaErrorInvalidValue);  // 65536 row blocks: over gridDim.y's 65535
  EXPECT_EQ(rwkv7_cuda::launch_lnx_rkvres_xg_backward<float>(4, 2048, 1, 1e-5f, rwkv7_cuda::LnxRkvresXgBackwardArgs{},
                                                             nullptr, nullptr),
            cudaErrorInvalidValue);  // N = 2048: more threads than a block has
}

}  // namespace
}  // namespace rwkv7
