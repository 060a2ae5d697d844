// SeedOptimizer against AdamW written out by hand (in float64, below): the seed's three
// parameter groups, the per-step lr, the moments it keeps, global-norm clipping, and the fp32
// master weights of a bf16 model. The golden training runs cover the same code end to end;
// here each piece can fail on its own.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <regex>
#include <string>

#include "golden.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/model.h"
#include "rwkv7/train/optim.h"

namespace rwkv7 {
namespace {

using testing::relative_error;

// eps of the size of the gradients (0.01): it changes every update, so a lost or misplaced eps
// shows (with the seed's 1e-18 the first update would be sign(g) whatever eps does).
const OptimizerSettings kSettings{/*lr=*/1e-2, /*beta1=*/0.8, /*beta2=*/0.95, /*eps=*/1e-2,
                                  /*weight_decay=*/0.1};

// The seed's groups for this model, spelled out rather than taken from param_groups.cpp:
// matrices named "*.weight" decay (emb, head, the four att projections, the two ffn ones);
// the LoRA matrices (w1, a2, ...) are not called ".weight" and the norms are 1-D; att.w0
// runs at twice the lr, without decay.
bool decays(const std::string& name) {
  static const std::regex re(
      R"(emb\.weight|head\.weight|blocks\.\d+\.(att\.(receptance|key|value|output)|ffn\.(key|value))\.weight)");
  return std::regex_match(name, re);
}
bool double_lr(const std::string& name) {
  static const std::regex re(R"(blocks\.\d+\.att\.w0)");
  return std::regex_match(name, re);
}
// Layer 0 computes v_first itself and never uses its v0/v1/v2: they get no gradient.
bool unused(const std::string& name) {
  static const std::regex re(R"(blocks\.0\.att\.v[012])");
  return std::regex_match(name, re);
}

// 2 layers (layer 1 has a used v0/v1/v2), one head of 64, vocabulary 16; every weight random,
// so that weight decay has something to act on.
RWKV tiny_model(at::ScalarType dtype) {
  RWKV model(seed_shape(2, 64, 16));
  at::manual_seed(11);
  at::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.copy_(at::randn(p.sizes(), at::kFloat));
  model->to(dtype);
  return model;
}

// Deterministic gradients of size ~0.01 on every parameter but the unused ones, in the
// parameter's dtype; returns them in fp32 by name.
std::map<std::string, at::Tensor> set_gradients(RWKV& model, uint64_t seed) {
  at::manual_seed(seed);
  std::map<std::string, at::Tensor> out;
  for (auto& p : model->named_parameters()) {
    if (unused(p.key())) {
      p.value().mutable_grad() = at::Tensor();
      continue;
    }
    at::Tensor g = (at::randn(p.value().sizes(), at::kFloat) * 0.01).to(p.value().scalar_type());
    p.value().mutable_grad() = g;
    out[p.key()] = g.to(at::kFloat).clone();
  }
  return out;
}

// AdamW as torch.optim.AdamW (and DeepSpeed's FusedAdam in adam_w_mode) define it, in float64:
//   p <- p (1 - lr wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
struct HandAdamW {
  at::Tensor p, m, v;
  int64_t t = 0;
  explicit HandAdamW(const at::Tensor& p0)
      : p(p0.to(at::kDouble).clone()), m(at::zeros_like(p)), v(at::zeros_like(p)) {}
  void step(const at::Tensor& grad, double lr, double wd, const OptimizerSettings& s) {
    const at::Tensor g = grad.to(at::kDouble);
    ++t;
    p = p * (1 - lr * wd);
    m = s.beta1 * m + (1 - s.beta1) * g;
    v = s.beta2 * v + (1 - s.beta2) * g * g;
    const double bc1 = 1 - std::pow(s.beta1, t), bc2 = 1 - std::pow(s.beta2, t);
    p = p - lr / bc1 * m / ((v / bc2).sqrt() + s.eps);
  }
};

// What the seed's groups make of the base lr for this parameter: (lr, weight decay).
std::pair<double, double> group_lr_wd(const std::string& name, double lr, double wd) {
  if (double_lr(name)) return {2 * lr, 0.0};
  return {lr, decays(name) ? wd : 0.0};
}

std::map<std::string, HandAdamW> hand_start(RWKV& model) {
  std::map<std::string, HandAdamW> out;
  for (auto& p : model->named_parameters()) out.emplace(p.key(), HandAdamW(p.value().detach()));
  return out;
}

// Guards the regexes above: the tiny model has each kind of parameter they name.
TEST(Optim, TheTinyModelHasEveryGroup) {
  RWKV model = tiny_model(at::kFloat);
  int n_decay = 0, n_double = 0, n_unused = 0, n_plain = 0;
  for (auto& p : model->named_parameters()) {
    const std::string& n = p.key();
    n_decay += decays(n);
    n_double += double_lr(n);
    n_unused += unused(n);
    n_plain += !decays(n) && !double_lr(n);
  }
  EXPECT_EQ(n_decay, 2 + 2 * 6);  // emb, head; per layer receptance, key, value, output, ffn key, value
  EXPECT_EQ(n_double, 2);
  EXPECT_EQ(n_unused, 3);
  EXPECT_GT(n_plain, 20);
}

// One step at the constructor's lr: every parameter as the hand AdamW of its group; the
// moments and step counts that state() reports; no gradient -> untouched, no state.
TEST(Optim, OneStepIsAdamWInTheSeedsGroups) {
  RWKV model = tiny_model(at::kFloat);
  auto hand = hand_start(model);
  SeedOptimizer opt(model, kSettings);
  const auto grads = set_gradients(model, 5);
  opt.step();
  const StateDict state = opt.state_dict();
  for (auto& p : model->named_parameters()) {
    const std::string& n = p.key();
    HandAdamW& h = hand.at(n);
    if (unused(n)) {
      EXPECT_TRUE(at::equal(p.value(), h.p.to(at::kFloat))) << n;
      EXPECT_THROW(find_tensor(state, "exp_avg." + n), CheckpointError) << n;
      continue;
    }
    const auto [lr, wd] = group_lr_wd(n, kSettings.lr, kSettings.weight_decay);
    h.step(grads.at(n), lr, wd, kSettings);
    EXPECT_LE(relative_error(p.value(), h.p), 1e-6) << n;
    EXPECT_LE(relative_error(find_tensor(state, "exp_avg." + n), h.m), 1e-6) << n;
    EXPECT_LE(relative_error(find_tensor(state, "exp_avg_sq." + n), h.v), 1e-6) << n;
    EXPECT_EQ(find_tensor(state, "step." + n).item<int64_t>(), 1) << n;
  }
}

// Two steps at two lrs set by set_lr (x2 for att.w0 at each); the second step is where the
// betas and bias corrections show in the weights.
TEST(Optim, PerStepLrAndSecondStep) {
  RWKV model = tiny_model(at::kFloat);
  auto hand = hand_start(model);
  SeedOptimizer opt(model, kSettings);
  const double lrs[2] = {3e-3, 7e-3};
  for (int s = 0; s < 2; ++s) {
    opt.set_lr(lrs[s]);
    const auto grads = set_gradients(model, 20 + s);
    opt.step();
    opt.zero_grad();
    for (auto& [n, g] : grads) {
      const auto [lr, wd] = group_lr_wd(n, lrs[s], kSettings.weight_decay);
      hand.at(n).step(g, lr, wd, kSettings);
    }
  }
  for (auto& p : model->named_parameters())
    EXPECT_LE(relative_error(p.value(), hand.at(p.key()).p), 1e-6) << p.key();
}

double global_norm(const std::map<std::string, at::Tensor>& grads) {
  double sum = 0;
  for (auto& [n, g] : grads) sum += g.to(at::kDouble).square().sum().item<double>();
  return std::sqrt(sum);
}

std::map<std::string, at::Tensor> current_gradients(RWKV& model) {
  std::map<std::string, at::Tensor> out;
  for (auto& p : model->named_parameters())
    if (p.value().grad().defined()) out[p.key()] = p.value().grad().clone();
  return out;
}

TEST(Optim, ClipGradientsToTheGlobalNorm) {
  RWKV model = tiny_model(at::kFloat);
  SeedOptimizer opt(model, kSettings);

  // below the max: the norm is returned, the gradients stay as they are
  auto grads = set_gradients(model, 3);
  const double norm = global_norm(grads);
  ASSERT_GT(norm, 1.0);  // ~130k values of size 0.01
  EXPECT_NEAR(opt.clip_gradients(2 * norm), norm, 1e-6 * norm);
  for (auto& [n, g] : current_gradients(model)) EXPECT_TRUE(at::equal(g, grads.at(n))) << n;

  // above it: every gradient scaled by the same max / (norm + 1e-6), the global norm becomes max
  const double max_norm = norm / 4;
  EXPECT_NEAR(opt.clip_gradients(max_norm), norm, 1e-6 * norm);
  const auto clipped = current_gradients(model);
  EXPECT_NEAR(global_norm(clipped), max_norm, 1e-5 * max_norm);
  const double coef = max_norm / (norm + 1e-6);
  for (auto& [n, g] : clipped) EXPECT_LE(relative_error(g, grads.at(n) * coef), 1e-6) << n;

  // sharded: the callback turns the local sum of squares into the global one (here as if 4
  // shards held the same gradients), and clipping follows the global norm
  grads = set_gradients(model, 4);
  const double local = global_norm(grads);
  double seen = -1;
  const double returned = opt.clip_gradients(local, [&](double sum_sq) {
    seen = sum_sq;
    return 4 * sum_sq;
  });
  EXPECT_NEAR(seen, local * local, 1e-6 * local * local);
  EXPECT_NEAR(returned, 2 * local, 2e-6 * local);
  EXPECT_NEAR(global_norm(current_gradients(model)), local * local / (2 * local + 1e-6), 1e-5 * local);
}

// A bf16 model: the update happens on fp32 masters (clip_gradients copies the gradients up),
// and each bf16 weight is its master rounded to bf16.
TEST(Optim, BFloat16ModelKeepsFloat32Masters) {
  RWKV model = tiny_model(at::kBFloat16);
  auto hand = hand_start(model);  // float64 of the bf16 values: exactly the masters' start
  SeedOptimizer opt(model, kSettings);
  const auto named = model->named_parameters();
  for (size_t k = 0; k < named.size(); ++k) {
    ASSERT_EQ(opt.master(k).scalar_type(), at::kFloat) << named[k].key();
    EXPECT_TRUE(at::equal(opt.master(k), named[k].value().to(at::kFloat))) << named[k].key();
  }
  const auto grads = set_gradients(model, 9);  // bf16 gradients, here as fp32
  opt.clip_gradients(1e9);
  opt.step();
  for (size_t k = 0; k < named.size(); ++k) {
    const std::string& n = named[k].key();
    const at::Tensor& p = named[k].value();
    EXPECT_EQ(p.scalar_type(), at::kBFloat16) << n;
    EXPECT_TRUE(at::equal(p, opt.master(k).to(at::kBFloat16))) << n;
    HandAdamW& h = hand.at(n);
    if (!unused(n)) {
      const auto [lr, wd] = group_lr_wd(n, kSettings.lr, kSettings.weight_decay);
      h.step(grads.at(n), lr, wd, kSettings);
    }
    EXPECT_LE(relative_error(opt.master(k), h.p), 1e-6) << n;
  }
  // the masters hold what bf16 cannot: updates of ~0.005 on weights of ~1 (bf16 ulp 2^-7)
  const size_t emb = 0;
  ASSERT_EQ(named[emb].key(), "emb.weight");
  EXPECT_FALSE(at::equal(opt.master(emb), named[emb].value().to(at::kFloat)));
}

}  // namespace
}  // namespace rwkv7
