// wkv7_state_passing (long context) against the fp64 golden cases made from BlinkDL/RWKV-CUDA's
// own reference (tests/data/wkv7_state_passing_cases.pth, tools/golden/), and the property
// that makes chunked training exact: a sample run as chunks, each from the last one's final
// state, gives the one-pass outputs, and the gradients passed back through the states give the
// one-pass gradients.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "golden.h"
#include "ops/wkv7/wkv7_golden_cases.h"
#include "rwkv7/model/wkv7.h"

namespace rwkv7 {
namespace {

using testing::relative_error;
constexpr auto& kInputs = testing::kWkv7Inputs;
const char* const kOutputs[] = {"y", "sT", "dr", "dw", "dk", "dv", "da", "db", "ds0"};

std::map<std::string, testing::Wkv7Case> passing_cases() {
  return testing::wkv7_golden_cases("wkv7_state_passing_cases.pth");
}

// y, sT of the op on the case's inputs in `dtype`, and the gradients of sum(y dy) + sum(sT dsT),
// all in float64 and named as in the golden file.
std::map<std::string, at::Tensor> run(testing::Wkv7Case& c, at::ScalarType dtype) {
  std::vector<at::Tensor> in;
  for (const char* n : kInputs) in.push_back(c[n].to(dtype).detach().requires_grad_(true));
  at::Tensor s0 = c["s0"].to(dtype == at::kDouble ? at::kDouble : at::kFloat).detach().requires_grad_(true);
  auto [y, sT] = wkv7_state_passing(in[0], in[1], in[2], in[3], in[4], in[5], s0);
  ((y.to(at::kDouble) * c["dy"]).sum() + (sT.to(at::kDouble) * c["dsT"]).sum()).backward();
  std::map<std::string, at::Tensor> out{{"y", y.detach()}, {"sT", sT.detach()}, {"ds0", s0.grad()}};
  for (int i = 0; i < 6; ++i) out[std::string("d") + kInputs[i]] = in[i].grad();
  for (auto& [name, t] : out) t = t.to(at::kDouble);
  return out;
}

// The worst relative error over y and sT (`values`) or over the seven gradients.
double worst(testing::Wkv7Case& c, std::map<std::string, at::Tensor>& got, bool values, std::string* where) {
  double w = 0;
  for (const char* n : kOutputs) {
    const bool is_value = std::string(n) == "y" || std::string(n) == "sT";
    if (is_value != values) continue;
    const double e = relative_error(got.at(n), c.at(n));
    if (e >= w) w = e, *where = n;
  }
  return w;
}

TEST(Wkv7StatePassing, GoldenCasesFloat64) {
  auto cases = passing_cases();
  ASSERT_EQ(cases.size(), 4u);
  for (auto& [name, c] : cases) {
    auto got = run(c, at::kDouble);
    std::string wv, wg;
    const double ev = worst(c, got, true, &wv), eg = worst(c, got, false, &wg);
    std::printf("  state passing fp64 %s: values %.2e (%s), gradients %.2e (%s)\n", name.c_str(), ev, wv.c_str(), eg,
                wg.c_str());
    EXPECT_LE(ev, 1e-9) << name << ": " << wv;
    EXPECT_LE(eg, 1e-8) << name << ": " << wg;
  }
}

// float32 and bf16 run the fast kernel; the bounds are the plain op's (wkv7_test.cpp).
TEST(Wkv7StatePassing, GoldenCasesFloat32AndBFloat16) {
  for (auto& [name, c] : passing_cases()) {
    for (auto [dtype, bound] : {std::pair{at::kFloat, 1e-4}, std::pair{at::kBFloat16, 1e-2}}) {
      auto got = run(c, dtype);
      std::string wv, wg;
      const double ev = worst(c, got, true, &wv), eg = worst(c, got, false, &wg);
      std::printf("  state passing %s %s: values %.2e (%s), gradients %.2e (%s)\n", c10::toString(dtype),
                  name.c_str(), ev, wv.c_str(), eg, wg.c_str());
      EXPECT_LE(ev, bound) << name << ": " << wv;
      EXPECT_LE(eg, bound) << name << ": " << wg;
    }
  }
}

// Chunks chained through the state equal one pass over the sample, in values and in every
// gradient (the gradient of a chunk's s0 is the previous chunk's dsT): the long-context step
// rests on this. T = 45 splits into 16 + 13 + 16 (not multiples of the kernel's 16-step chunks).
TEST(Wkv7StatePassing, ChainedChunksAreOnePass) {
  for (at::ScalarType dtype : {at::kDouble, at::kFloat}) {
    at::manual_seed(11);
    const int64_t B = 2, T = 45, H = 2, N = 16;
    auto opt = at::TensorOptions().dtype(dtype);
    std::vector<at::Tensor> in = {at::randn({B, T, H, N}, opt), -0.5 - at::rand({B, T, H, N}, opt),
                                  at::randn({B, T, H, N}, opt), at::randn({B, T, H, N}, opt),
                                  at::randn({B, T, H, N}, opt) * 0.2, at::randn({B, T, H, N}, opt) * 0.2};
    const at::Tensor dy = at::randn({B, T, H, N}, opt);
    const at::Tensor s_init = at::randn({B, H, N, N}, opt.dtype(dtype == at::kDouble ? at::kDouble : at::kFloat));
    const at::Tensor dsT = at::randn_like(s_init);
    auto leaves = [&] {
      std::vector<at::Tensor> l;
      for (auto& t : in) l.push_back(t.detach().clone().requires_grad_(true));
      l.push_back(s_init.detach().clone().requires_grad_(true));
      return l;
    };
    std::vector<at::Tensor> one = leaves(), chained = leaves();
    auto [y1, sT1] = wkv7_state_passing(one[0], one[1], one[2], one[3], one[4], one[5], one[6]);
    ((y1 * dy).sum() + (sT1 * dsT).sum()).backward();

    std::vector<at::Tensor> ys;
    at::Tensor s = chained[6];
    for (auto [t0, t1] : {std::pair<int64_t, int64_t>{0, 16}, {16, 29}, {29, 45}}) {
      auto part = [&](int i) { return chained[i].slice(1, t0, t1); };
      auto [y, sT] = wkv7_state_passing(part(0), part(1), part(2), part(3), part(4), part(5), s);
      ys.push_back(y);
      s = sT;
    }
    const at::Tensor y2 = at::cat(ys, 1);
    ((y2 * dy).sum() + (s * dsT).sum()).backward();
    const double tol = dtype == at::kDouble ? 1e-12 : 1e-5;
    EXPECT_LE(relative_error(y2, y1), tol);
    EXPECT_LE(relative_error(s, sT1), tol);
    for (int i = 0; i < 7; ++i)
      EXPECT_LE(relative_error(chained[i].grad(), one[i].grad()), tol) << (i < 6 ? kInputs[i] : "s0") << " "
                                                                       << c10::toString(dtype);
  }
}

// sT is wkv7_state's state: a further step from it is the next step of the longer sequence; and
// with dsT = 0 the gradients are wkv7_state's.
TEST(Wkv7StatePassing, AgreesWithWkv7State) {
  auto c = passing_cases().at("B2_T32_H2_N64");
  std::vector<at::Tensor> in;
  for (const char* n : kInputs) in.push_back(c[n].detach().requires_grad_(true));
  const at::Tensor s0 = c["s0"];
  auto [y, sT] = wkv7_state_passing(in[0], in[1], in[2], in[3], in[4], in[5], s0);
  EXPECT_LE(relative_error(y, wkv7_state(in[0], in[1], in[2], in[3], in[4], in[5], s0)), 1e-15);
  (y * c["dy"]).sum().backward();  // sT unused: its gradient is zero
  std::vector<at::Tensor> g1;
  for (auto& t : in) g1.push_back(t.grad().clone()), t.grad().zero_();
  (wkv7_state(in[0], in[1], in[2], in[3], in[4], in[5], s0) * c["dy"]).sum().backward();
  for (int i = 0; i < 6; ++i) EXPECT_LE(relative_error(g1[i], in[i].grad()), 1e-15) << kInputs[i];
}

TEST(Wkv7StatePassing, ArgumentErrorsNameTheArgument) {
  auto x = at::randn({2, 4, 3, 8});
  testing::expect_error_naming([&] { wkv7_state_passing(x, x, x, x, x, x, at::zeros({2, 3, 8, 7})); }, "s0");
  testing::expect_error_naming([&] { wkv7_state_passing(x, x, x, x, x, at::randn({2, 5, 3, 8}), at::zeros({2, 3, 8, 8})); }, "b");
}

}  // namespace
}  // namespace rwkv7
