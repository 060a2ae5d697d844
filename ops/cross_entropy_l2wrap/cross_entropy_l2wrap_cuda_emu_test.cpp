// cross_entropy_l2wrap's CUDA kernels on the CPU (tests/cuda_emu), held against the composite:
// ATen's cross_entropy plus the L2Wrap gradient, written as a term with value 0 and gradient
// 1e-4 / M * max at the argmax: d/dx (1e-4 / 2M * max^2).
#include "tests/cuda_emu/cuda_emu.h"  // the CUDA environment first: the kernels compile against it
#include "ops/cross_entropy_l2wrap/cross_entropy_l2wrap_kernels.cuh"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "tests/cuda_emu/composite_check.h"

namespace rwkv7 {
namespace {

using testing::Tensors;

Tensors composite(const Tensors& in) {  // logits [M, V], targets [M]
  const at::Tensor& x = in[0];
  const at::Tensor q = std::get<0>(x.max(-1)).square().sum() * (1e-4 / (2.0 * x.size(0)));
  return {at::cross_entropy_loss(x, in[1]) + (q - q.detach())};
}

Tensors kernel(const Tensors& in, const Tensors& dout, at::ScalarType dtype) {
  const long M = in[0].size(0);
  const int V = int(in[0].size(1));
  at::Tensor row_loss = at::full({M}, NAN, at::kFloat), loss = at::full({}, NAN, at::kFloat);
  const at::Tensor dloss = dout[0].to(at::kFloat);
  at::Tensor dlogits = at::empty_like(in[0]);
  const auto* t = reinterpret_cast<const long long*>(in[1].data_ptr<int64_t>());
  auto launch = [&](auto element) {
    using E = decltype(element);
    EXPECT_EQ(rwkv7_cuda::launch_cross_entropy_l2wrap_forward<E>(M, V, in[0].data_ptr(), t, row_loss.data_ptr<float>(),
                                                                 loss.data_ptr<float>(), nullptr),
              cudaSuccess);
    EXPECT_EQ(rwkv7_cuda::launch_cross_entropy_l2wrap_backward<E>(M, V, in[0].data_ptr(), t, dloss.data_ptr<float>(),
                                                                  dlogits.data_ptr(), nullptr),
              cudaSuccess);
  };
  testing::with_element_type(dtype, launch);
  return {loss.to(at::kDouble), dlogits.to(at::kDouble)};
}

TEST(CudaEmu, CrossEntropyL2WrapMatchesComposite) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const int64_t M = 6, V = 700;  // V not a multiple of the block's 256 threads
  const at::Tensor logits = at::randn({M, V}, gen, at::kDouble) * 3;
  const at::Tensor targets = at::randint(V, {M}, gen, at::kLong);
  // dloss = 0.7, not 1: the L2Wrap term must scale with it too
  testing::expect_kernel_matches_composite("cross_entropy_l2wrap", {"loss", "dlogits"}, composite, kernel,
                                           {logits, targets}, {true, false}, {at::full({}, 0.7, at::kDouble)});
}

TEST(CudaEmu, CrossEntropyL2WrapTakesTheFirstOfTiedMaxima) {
  at::Tensor logits = at::zeros({1, 300}, at::kFloat);
  logits[0][5] = 2.f;
  logits[0][260] = 2.f;  // a tie in another thread's stride
  const at::Tensor targets = at::zeros({1}, at::kLong), dloss = at::ones({1}, at::kFloat);
  at::Tensor d = at::empty_like(logits);
  ASSERT_EQ(rwkv7_cuda::launch_cross_entropy_l2wrap_backward<float>(
                1, 300, logits.data_ptr(), reinterpret_cast<const long long*>(targets.data_ptr<int64_t>()),
                dloss.data_ptr<float>(), d.data_ptr(), nullptr),
            cudaSuccess);
  EXPECT_NEAR(d[0][5].item<float>() - d[0][260].item<float>(), 2e-4, 1e-7);
}

}  // namespace
}  // namespace rwkv7
