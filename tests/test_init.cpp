// The seed's initial weights: deterministic parts against golden values, random parts by
// their properties (orthogonality and gain, bounds, zeros).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "golden.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/init.h"
#include "rwkv7/model/model.h"

namespace rwkv7 {
namespace {

// V does not enter any deterministic value; a small vocabulary keeps the test quick.
RWKV initialised(int64_t L, int64_t C, int64_t V, uint64_t seed) {
  RWKV model(seed_shape(L, C, V));
  init_seed_weights(model, seed);
  return model;
}

TEST(Init, DeterministicValuesMatchTheSeed) {
  RWKV model = initialised(12, 768, 256, 0);
  const StateDict mine = model->state_dict();
  const StateDict golden = read_pth(testing::golden("deterministic_init_L12_D768.pth"));
  ASSERT_GT(golden.size(), 100u);
  for (const auto& [name, want] : golden) {
    const at::Tensor& got = find_tensor(mine, name);
    EXPECT_EQ(got.sizes(), want.sizes()) << name;
    EXPECT_LE(testing::max_abs_diff(got, want), 1e-6) << name;
  }
}

// W is a scaled orthogonal matrix: W W^T = gain^2 I (rows <= cols) or W^T W = gain^2 I.
void expect_orthogonal(const at::Tensor& w, double gain, const std::string& name) {
  const at::Tensor w64 = w.to(at::kDouble);
  const at::Tensor g = w.size(0) <= w.size(1) ? at::matmul(w64, w64.t()) : at::matmul(w64.t(), w64);
  const at::Tensor eye = at::eye(g.size(0), at::kDouble) * gain * gain;
  EXPECT_LE(testing::max_abs_diff(g, eye), 1e-4 * std::max(1.0, gain * gain)) << name;
}

TEST(Init, RandomPartsHaveTheSeedsDistributions) {
  const int64_t L = 2, C = 128, V = 512;
  RWKV model = initialised(L, C, V, 1);
  const StateDict p = model->state_dict();
  auto t = [&](const std::string& n) { return find_tensor(p, n); };
  // emb ~ U(-1e-4, 1e-4), not constant
  EXPECT_LE(t("emb.weight").abs().max().item<double>(), 1e-4);
  EXPECT_GT(t("emb.weight").std().item<double>(), 3e-5);
  expect_orthogonal(t("head.weight"), 0.5 * std::sqrt(double(V) / C), "head");
  for (int l = 0; l < L; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    expect_orthogonal(t(b + "att.receptance.weight"), 1.0, "receptance");
    expect_orthogonal(t(b + "att.key.weight"), 0.1, "key");
    expect_orthogonal(t(b + "att.value.weight"), 1.0, "value");
    expect_orthogonal(t(b + "ffn.key.weight"), 1.0, "ffn.key");
    for (const char* up : {"att.w2", "att.a2", "att.v2", "att.g2"}) expect_orthogonal(t(b + up), 0.1, up);
    for (const char* zero : {"att.output.weight", "ffn.value.weight", "att.w1", "att.a1", "att.v1",
                             "att.g1", "att.ln_x.bias", "ln1.bias", "ln2.bias"})
      EXPECT_EQ(t(b + zero).abs().max().item<double>(), 0.0) << b << zero;
    EXPECT_TRUE(at::equal(t(b + "ln1.weight"), at::ones({C})));
    EXPECT_NEAR(t(b + "att.ln_x.weight")[0].item<double>(), std::pow((1.0 + l) / L, 0.7), 1e-7);
  }
  // another seed gives other random weights, the same seed the same ones
  RWKV again = initialised(L, C, V, 1), other = initialised(L, C, V, 2);
  EXPECT_TRUE(at::equal(again->head->weight, model->head->weight));
  EXPECT_FALSE(at::equal(other->head->weight, model->head->weight));
}

}  // namespace
}  // namespace rwkv7
