// The fused ops' CPU implementations (ops/<op>/<op>_cpu.cpp, with their hand-written backward
// formulas, reached through the recompute autograd rule) against the composite ATen code of the
// model, both differentiated in float64: outputs and every gradient to 1e-10. Their CUDA kernels
// are held against the same composites in the CudaEmu tests.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "golden.h"
#include "rwkv7/model/fused_ops.h"
#include "rwkv7/model/wkv7.h"
#include "rwkv7/train/flops.h"
#include "rwkv7/train/loss.h"

namespace rwkv7 {
namespace {

using Tensors = std::vector<at::Tensor>;
using Fn = std::function<Tensors(const Tensors&)>;

// outputs, then the gradients of every input, for a fixed random output gradient
Tensors outputs_and_grads(const Fn& f, const Tensors& inputs, uint64_t seed) {
  Tensors in;
  for (const auto& t : inputs) in.push_back(t.is_floating_point() ? t.detach().clone().requires_grad_(true) : t);
  const Tensors outs = f(in);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor loss = at::zeros({}, at::kDouble);
  for (const auto& o : outs) loss = loss + (o * at::randn(o.sizes(), gen, at::kDouble)).sum();
  loss.backward();
  Tensors r;
  for (const auto& o : outs) r.push_back(o.detach());
  for (const auto& t : in)
    if (t.is_floating_point()) r.push_back(t.grad());
  return r;
}

void expect_same(const std::string& what, const Fn& fused_fn, const Fn& composite, const Tensors& inputs) {
  const Tensors got = outputs_and_grads(fused_fn, inputs, 1), want = outputs_and_grads(composite, inputs, 1);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_LE(testing::relative_error(got[i], want[i]), 1e-10) << what << " result " << i;
}

at::Tensor randn(std::vector<int64_t> s, at::Generator& g) { return at::randn(s, g, at::kDouble); }

TEST(FusedOps, TokenShiftMixMatchesComposite) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(1);
  expect_same(
      "token_shift_mix", [](const Tensors& t) { return Tensors{fused::token_shift_mix(t[0], t[1])}; },
      [](const Tensors& t) {
        const at::Tensor xx = at::constant_pad_nd(t[0], {0, 0, 1, -1}) - t[0];
        return Tensors{at::stack({t[0] + xx * t[1][0], t[0] + xx * t[1][1], t[0] + xx * t[1][2]})};
      },
      {randn({2, 5, 8}, g), at::rand({3, 8}, g, at::kDouble)});
}

TEST(FusedOps, KkPreMatchesComposite) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(2);
  const int64_t B = 2, T = 3, H = 2, N = 4, C = H * N;
  expect_same(
      "kk_pre",
      [&](const Tensors& t) {
        auto [k, nk, ka] = fused::kk_pre(t[0], t[1], t[2], t[3], t[4], H);
        return Tensors{k, nk, ka};
      },
      [&](const Tensors& t) {
        const at::Tensor a = at::sigmoid(t[2] + t[1]);
        at::Tensor kk = (t[0] * t[3]).view({B, T, H, N});
        kk = (kk / kk.norm(2, -1, true).clamp_min(1e-12)).view({B, T, C});
        return Tensors{t[0] * (1 + (a - 1) * t[4]), -kk, kk * a};
      },
      {randn({B, T, C}, g), randn({B, T, C}, g), randn({C}, g), randn({C}, g), randn({C}, g)});
}

TEST(FusedOps, VresGateMatchesComposite) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  expect_same(
      "vres_gate", [](const Tensors& t) { return Tensors{fused::vres_gate(t[0], t[1], t[2], t[3])}; },
      [](const Tensors& t) { return Tensors{t[0] + (t[1] - t[0]) * at::sigmoid(t[3] + t[2])}; },
      {randn({2, 3, 8}, g), randn({2, 3, 8}, g), randn({2, 3, 8}, g), randn({8}, g)});
}

TEST(FusedOps, LnxRkvresXgMatchesComposite) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(4);
  const int64_t B = 2, T = 3, H = 2, N = 4, C = H * N;
  expect_same(
      "lnx_rkvres_xg",
      [&](const Tensors& t) {
        return Tensors{fused::lnx_rkvres_xg(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], H, 64e-5)};
      },
      [&](const Tensors& t) {
        at::Tensor y = at::group_norm(t[0].reshape({B * T, C}), H, t[6], t[7], 64e-5).view({B, T, C});
        auto heads = [&](const at::Tensor& x) { return x.reshape({B, T, H, N}); };
        const at::Tensor rk = (heads(t[1]) * heads(t[2]) * t[4]).sum(-1, true);
        return Tensors{(y + (rk * heads(t[3])).view({B, T, C})) * t[5]};
      },
      {randn({B, T, C}, g) * 2 + 0.5, randn({B, T, C}, g), randn({B, T, C}, g), randn({B, T, C}, g), randn({H, N}, g),
       randn({B, T, C}, g), at::rand({C}, g, at::kDouble) + 0.5, randn({C}, g)});
}

TEST(FusedOps, ReluSquareMatchesComposite) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(5);
  expect_same(
      "relu_square", [](const Tensors& t) { return Tensors{fused::relu_square(t[0])}; },
      [](const Tensors& t) { return Tensors{at::relu(t[0]).square()}; }, {randn({3, 7}, g)});
}

// The raw-decay op against wkv7 given the decay the model's soft clamp means, w = -softplus(-x) - 0.5,
// computed element by element with the C library (log1p, exp), apart from any ATen formula.
TEST(FusedOps, WkvRawDecayAppliesTheSoftClamp) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(6);
  auto in = [&] { return randn({1, 4, 1, 8}, g) * 0.5; };
  const Tensors t = {in(), in() * 4, in(), in(), in(), in()};
  // w and its slope dw/dx = 1 / (1 + e^x); softplus(z) = log(1 + e^z)
  at::Tensor w = t[1].clone(), slope = t[1].clone();
  double *pw = w.data_ptr<double>(), *ps = slope.data_ptr<double>();
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double x = pw[i];
    pw[i] = -std::log1p(std::exp(-x)) - 0.5;
    ps[i] = 1 / (1 + std::exp(x));
  }
  expect_same(
      "wkv7_raw_decay",
      [](const Tensors& u) { return Tensors{fused::wkv7_raw_decay(u[0], u[1], u[2], u[3], u[4], u[5])}; },
      [&](const Tensors& u) {
        const at::Tensor w_of_x = w + (u[1] - u[1].detach()) * slope;  // value w, gradient through the slope
        return Tensors{wkv7(u[0], w_of_x, u[2], u[3], u[4], u[5])};
      },
      t);
}

// The fused loss, the composite loss (ATen + L2Wrap) and the chunked head agree, also for an
// incoming gradient other than 1, where the seed's L2Wrap (its term unscaled) was wrong.
TEST(FusedOps, CrossEntropyL2WrapAndChunkedHeadMatchComposite) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(7);
  const int64_t B = 2, T = 5, C = 6, V = 11;
  const at::Tensor hidden = randn({B, T, C}, g), weight = randn({V, C}, g);
  const at::Tensor targets = at::randint(V, {B, T}, g, at::kLong);
  auto scaled = [](const at::Tensor& loss) { return loss * 0.3; };  // dloss = 0.3
  const Fn composite = [&](const Tensors& t) {
    return Tensors{scaled(cross_entropy_l2wrap(at::matmul(t[0], t[1].t()), targets))};
  };
  expect_same(
      "cross_entropy_l2wrap",
      [&](const Tensors& t) { return Tensors{scaled(cross_entropy_l2wrap(at::matmul(t[0], t[1].t()), targets, true))}; },
      composite, {hidden, weight});
  for (const int64_t chunk : {1, 3, 10, 64})
    expect_same(
        "chunked_head_loss " + std::to_string(chunk),
        [&](const Tensors& t) { return Tensors{scaled(chunked_head_loss(t[0], t[1], targets, chunk))}; }, composite,
        {hidden, weight});
}

// The L2Wrap term by hand: 1e-4 / M * max at the argmax, times the incoming gradient.
TEST(FusedOps, L2WrapTermScalesWithTheIncomingGradient) {
  const at::Tensor logits = at::tensor({0.0, 3.0, 1.0}, at::kDouble).view({1, 1, 3}).requires_grad_(true);
  const at::Tensor targets = at::zeros({1, 1}, at::kLong);
  (cross_entropy_l2wrap(logits, targets) * 2.0).backward();
  const at::Tensor p = at::softmax(logits.detach().view({3}), 0);
  EXPECT_NEAR(logits.grad().view({3})[1].item<double>(), 2.0 * (p[1].item<double>() + 1e-4 * 3.0), 1e-12);
}

}  // namespace
}  // namespace rwkv7

namespace rwkv7 {
namespace {

// By hand for L=2, C=128, V=256, N=64, F=512 and LoRA widths 32: per layer 4 C^2 + 2 C (4 * 32)
// + 2 C F = 229376 matmul weights; with the head 491520; times 6, plus 2 * 24 C N for the scan.
TEST(Flops, TrainingFlopsPerTokenFromTheShape) {
  ModelShape s;
  s.n_layer = 2, s.n_embd = 128, s.vocab_size = 256, s.head_size = 64, s.dim_ffn = 512;
  s.d_decay = s.d_aaa = s.d_mv = s.d_gate = 32;
  EXPECT_DOUBLE_EQ(training_flops_per_token(s), 6.0 * 491520 + 2 * 24 * 128 * 64);
}

TEST(Flops, PeakIsConfiguredOrKnownOrUnknown) {
  std::string name;
  EXPECT_EQ(peak_tflops(c10::Device(c10::kCPU), Precision::fp32, 0, &name), 0);  // unknown: no MFU shown
  EXPECT_EQ(name, "cpu");
  EXPECT_EQ(peak_tflops(c10::Device(c10::kCPU), Precision::fp32, 1.5, &name), 1.5);
}

}  // namespace
}  // namespace rwkv7
