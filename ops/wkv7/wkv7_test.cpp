// The WKV-7 op against the seed's fp64 golden cases, a finite-difference gradient check,
// and its argument checks.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <map>

#include "golden.h"
#include "ops/wkv7/wkv7_golden_cases.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/wkv7.h"

namespace rwkv7 {
namespace {

using testing::golden;
using testing::relative_error;

constexpr auto& kInputs = testing::kWkv7Inputs;
constexpr auto& kGrads = testing::kWkv7Grads;
std::map<std::string, testing::Wkv7Case> load_cases(const std::string& file = "wkv7_cases.pth") { return testing::wkv7_golden_cases(file); }

struct Result {
  at::Tensor y;
  std::vector<at::Tensor> grads;
};

// y = wkv7(inputs in `dtype`); gradients of sum(y * dy), returned in float64.
Result run(std::map<std::string, at::Tensor>& c, at::ScalarType dtype) {
  std::vector<at::Tensor> in;
  for (const char* n : kInputs) in.push_back(c[n].to(dtype).detach().requires_grad_(true));
  at::Tensor y = wkv7(in[0], in[1], in[2], in[3], in[4], in[5]);
  (y.to(at::kDouble) * c["dy"]).sum().backward();
  Result r{y.detach().to(at::kDouble), {}};
  for (auto& t : in) r.grads.push_back(t.grad().to(at::kDouble));
  return r;
}

double worst_error(std::map<std::string, at::Tensor>& c, const Result& r, std::string* where) {
  double worst = relative_error(r.y, c["y"]);
  *where = "y";
  for (int i = 0; i < 6; ++i) {
    const double e = relative_error(r.grads[i], c[kGrads[i]]);
    if (e > worst) {
      worst = e;
      *where = kGrads[i];
    }
  }
  return worst;
}

TEST(Wkv7Cpu, GoldenCasesFloat64) {
  auto cases = load_cases();
  ASSERT_EQ(cases.size(), 3u);
  for (auto& [name, c] : cases) {
    std::string where;
    const double err = worst_error(c, run(c, at::kDouble), &where);
    EXPECT_LE(err, 1e-9) << name << ": " << where;
  }
}

TEST(Wkv7Cpu, GoldenCasesFloat32) {
  auto cases = load_cases();
  for (auto& [name, c] : cases) {
    std::string where;
    const double err = worst_error(c, run(c, at::kFloat), &where);
    EXPECT_LE(err, 1e-4) << name << ": " << where;
  }
}

// bf16 inputs and outputs with fp32 accumulation: the error is that of rounding the inputs
// and outputs to 8 mantissa bits (2^-9 = 2e-3 per value). Measured: at most 6.3e-3 relative
// over the three cases (docs/testing.md); the bound 1e-2 is that plus margin, far below the
// O(1) error of a wrong formula.
TEST(Wkv7Cpu, GoldenCasesBFloat16) {
  auto cases = load_cases();
  for (auto& [name, c] : cases) {
    std::string where;
    const double err = worst_error(c, run(c, at::kBFloat16), &where);
    EXPECT_LE(err, 1e-2) << name << ": " << where;
    std::printf("[ bf16 ] %s: worst relative error %.3g (%s)\n", name.c_str(), err, where.c_str());
  }
}

// Central differences on a small float64 problem whose T crosses two chunk boundaries and
// whose head size is not 64: every element of every input.
TEST(Wkv7Cpu, FiniteDifferenceGradcheck) {
  at::manual_seed(7);
  const int64_t B = 1, T = 37, H = 2, N = 3;
  auto opt = at::TensorOptions().dtype(at::kDouble);
  std::vector<at::Tensor> in = {
      at::randn({B, T, H, N}, opt),                        // r
      -0.5 - at::rand({B, T, H, N}, opt),                  // w (decay in (0.54, 0.9))
      at::randn({B, T, H, N}, opt),                        // k
      at::randn({B, T, H, N}, opt),                        // v
      at::randn({B, T, H, N}, opt) * 0.3,                  // a
      at::randn({B, T, H, N}, opt) * 0.3};                 // b
  const at::Tensor dy = at::randn({B, T, H, N}, opt);
  auto loss = [&](const std::vector<at::Tensor>& x) {
    return (wkv7(x[0], x[1], x[2], x[3], x[4], x[5]) * dy).sum().item<double>();
  };
  std::vector<at::Tensor> leaf;
  for (auto& t : in) leaf.push_back(t.clone().requires_grad_(true));
  (wkv7(leaf[0], leaf[1], leaf[2], leaf[3], leaf[4], leaf[5]) * dy).sum().backward();
  const double eps = 1e-6;
  for (int i = 0; i < 6; ++i) {
    at::Tensor numeric = at::zeros_like(in[i]);
    auto flat = in[i].view({-1});
    for (int64_t e = 0; e < flat.numel(); ++e) {
      const double x0 = flat[e].item<double>();
      flat[e] = x0 + eps;
      const double up = loss(in);
      flat[e] = x0 - eps;
      const double down = loss(in);
      flat[e] = x0;
      numeric.view({-1})[e] = (up - down) / (2 * eps);
    }
    EXPECT_LE(relative_error(leaf[i].grad(), numeric), 1e-7) << kInputs[i];
  }
}

TEST(Wkv7Cpu, NonContiguousInputsAndSingleStep) {
  at::manual_seed(3);
  auto base = at::randn({2, 5, 3, 8}, at::kDouble);
  // a transposed view of the same values must give the same result as a contiguous copy
  auto t = at::randn({2, 3, 5, 8}, at::kDouble).transpose(1, 2);
  auto y1 = wkv7(t, -0.6 - t.abs(), t, t, t * 0.1, t * 0.1);
  auto tc = t.contiguous();
  auto y2 = wkv7(tc, -0.6 - tc.abs(), tc, tc, tc * 0.1, tc * 0.1);
  EXPECT_EQ(relative_error(y1, y2), 0.0);
  // T = 1: y = (v k^T) r, since S_0 = 0
  auto one = base.slice(1, 0, 1).contiguous();
  auto y = wkv7(one, one, one, one, one, one);
  auto expect = one * (one * one).sum(-1, true);
  EXPECT_LE(relative_error(y, expect), 1e-12);
}

using testing::expect_error_naming;

TEST(Wkv7Cpu, ArgumentErrorsNameTheArgument) {
  auto x = at::randn({1, 4, 1, 8});
  auto bad_rank = at::randn({4, 8});
  expect_error_naming([&] { wkv7(bad_rank, x, x, x, x, x); }, "r");
  expect_error_naming([&] { wkv7(x, x, at::randn({1, 4, 1, 7}), x, x, x); }, "k");
  expect_error_naming([&] { wkv7(x, x, x, x.to(at::kDouble), x, x); }, "v");
  expect_error_naming([&] { wkv7(x, x, x, x, x, at::randn({1, 5, 1, 8})); }, "b");
  expect_error_naming([&] { wkv7(x.to(at::kInt), x.to(at::kInt), x.to(at::kInt), x.to(at::kInt),
                                 x.to(at::kInt), x.to(at::kInt)); }, "r");
}

// ---- wkv7_state: an initial state s0 (state tuning) ----

// y = wkv7_state(inputs and s0 in `dtype`); gradients of sum(y * dy), "ds" of s0, in float64.
Result run_state(std::map<std::string, at::Tensor>& c, at::ScalarType dtype) {
  std::vector<at::Tensor> in;
  for (const char* n : kInputs) in.push_back(c[n].to(dtype).detach().requires_grad_(true));
  at::Tensor s0 = c["s"].to(dtype).detach().requires_grad_(true);
  at::Tensor y = wkv7_state(in[0], in[1], in[2], in[3], in[4], in[5], s0);
  (y.to(at::kDouble) * c["dy"]).sum().backward();
  Result r{y.detach().to(at::kDouble), {}};
  for (auto& t : in) r.grads.push_back(t.grad().to(at::kDouble));
  r.grads.push_back(s0.grad().to(at::kDouble));
  return r;
}

double worst_state_error(std::map<std::string, at::Tensor>& c, const Result& r, std::string* where) {
  double worst = worst_error(c, r, where);
  const double e = relative_error(r.grads[6], c["ds"]);
  if (e > worst) worst = e, *where = "ds";
  return worst;
}

// RWKV-PEFT's cases: its time_state (shared by the batch) as the initial state, fp64 to 1e-9.
TEST(Wkv7Cpu, StateGoldenCasesFloat64) {
  auto cases = load_cases("wkv7_state_cases.pth");
  ASSERT_EQ(cases.size(), 3u);
  for (auto& [name, c] : cases) {
    ASSERT_EQ(c["s"].dim(), 3) << name;
    std::string where;
    const double err = worst_state_error(c, run_state(c, at::kDouble), &where);
    std::printf("  state fp64 %s: worst %.2e (%s)\n", name.c_str(), err, where.c_str());
    EXPECT_LE(err, 1e-9) << name << ": " << where;
  }
}

TEST(Wkv7Cpu, StateGoldenCasesFloat32) {
  for (auto& [name, c] : load_cases("wkv7_state_cases.pth")) {
    std::string where;
    const double err = worst_state_error(c, run_state(c, at::kFloat), &where);
    EXPECT_LE(err, 1e-4) << name << ": " << where;  // the fp32 bound of the cases without a state
  }
}

// A zero state is no state; a per-sample state equal in every sample is the shared one, whose
// gradient is the batch sum of the per-sample gradients.
TEST(Wkv7Cpu, StateZeroIsPlainAndSharedIsTheBatchSum) {
  auto c = load_cases().at("B2_T32_H2");
  std::vector<at::Tensor> in;
  for (const char* n : kInputs) in.push_back(c[n]);
  const at::Tensor plain = wkv7(in[0], in[1], in[2], in[3], in[4], in[5]);
  EXPECT_TRUE(at::equal(wkv7_state(in[0], in[1], in[2], in[3], in[4], in[5], at::zeros({2, 64, 64}, at::kDouble)),
                        plain));
  at::manual_seed(5);
  const at::Tensor shared = at::randn({2, 64, 64}, at::kDouble).requires_grad_(true);
  const at::Tensor per_sample = shared.detach().unsqueeze(0).repeat({2, 1, 1, 1}).requires_grad_(true);
  const at::Tensor y1 = wkv7_state(in[0], in[1], in[2], in[3], in[4], in[5], shared);
  const at::Tensor y2 = wkv7_state(in[0], in[1], in[2], in[3], in[4], in[5], per_sample);
  EXPECT_TRUE(at::equal(y1, y2));
  (y1 * c["dy"]).sum().backward();
  (y2 * c["dy"]).sum().backward();
  EXPECT_LE(relative_error(shared.grad(), per_sample.grad().sum(0)), 1e-14);
  EXPECT_GT(relative_error(shared.grad(), per_sample.grad()[0]), 1e-3);  // both samples contribute
}

TEST(Wkv7Cpu, StateOfTheWrongShapeIsNamed) {
  auto x = at::randn({2, 4, 3, 8});
  expect_error_naming([&] { wkv7_state(x, x, x, x, x, x, at::zeros({3, 8, 7})); }, "s0");
  expect_error_naming([&] { wkv7_state(x, x, x, x, x, x, at::zeros({1, 3, 8, 8})); }, "s0");
  expect_error_naming([&] { wkv7_state(x, x, x, x, x, x, at::zeros({3, 8, 8}, at::kInt)); }, "s0");
}

}  // namespace
}  // namespace rwkv7
