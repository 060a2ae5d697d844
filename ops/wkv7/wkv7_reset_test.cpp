// wkv7_reset (packed documents) against a reference built from pieces already held to the
// golden data: each sample cut at its restarts, every piece run by wkv7_state_passing from
// s0 (the first piece, unless it restarts) or from s_reset, the pieces' outputs joined. Values
// and all eight gradients (r, w, k, v, a, b, s0, s_reset) must agree, with gradients arriving
// through both y and sT.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "golden.h"
#include "ops/wkv7/wkv7_golden_cases.h"
#include "rwkv7/model/wkv7.h"

namespace rwkv7 {
namespace {

using testing::relative_error;
constexpr auto& kInputs = testing::kWkv7Inputs;

struct Problem {
  std::vector<at::Tensor> in;  // r w k v a b, [B, T, H, N]
  at::Tensor s0, s_reset;      // [B, H, N, N]; s_reset [H, N, N] when shared
  at::Tensor reset;            // [B, T] bool
  at::Tensor dy, dsT;
};

// Inputs shaped as the model makes them (w <= -0.5, a = -kk, b = kk * sigmoid), in float64.
Problem make_problem(int64_t B, int64_t T, int64_t H, int64_t N, bool shared_reset_state,
                     const std::vector<std::vector<int64_t>>& restarts, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto randn = [&](at::IntArrayRef shape) { return at::randn(shape, gen, at::kDouble); };
  Problem p;
  at::Tensor kk = randn({B, T, H, N});
  kk = kk / kk.norm(2, -1, true);
  p.in = {randn({B, T, H, N}), -at::softplus(-randn({B, T, H, N})) - 0.5, randn({B, T, H, N}), randn({B, T, H, N}),
          -kk, kk * at::sigmoid(randn({B, T, H, N}))};
  p.s0 = randn({B, H, N, N});
  p.s_reset = shared_reset_state ? randn({H, N, N}) : randn({B, H, N, N});
  p.reset = at::zeros({B, T}, at::kBool);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t : restarts[b]) p.reset[b][t] = true;
  p.dy = randn({B, T, H, N});
  p.dsT = randn({B, H, N, N});
  return p;
}

struct Result {
  at::Tensor y, sT;
  std::vector<at::Tensor> grads;  // dr dw dk dv da db ds0 ds_reset
};

// Leaves in `dtype` (the states in float32, float64 for float64), the loss sum(y dy) + sum(sT dsT).
std::vector<at::Tensor> leaves(const Problem& p, at::ScalarType dtype) {
  const auto state_dtype = dtype == at::kDouble ? at::kDouble : at::kFloat;
  std::vector<at::Tensor> l;
  for (const auto& t : p.in) l.push_back(t.to(dtype).detach().requires_grad_(true));
  l.push_back(p.s0.to(state_dtype).detach().requires_grad_(true));
  l.push_back(p.s_reset.to(state_dtype).detach().requires_grad_(true));
  return l;
}

Result finish(const Problem& p, std::vector<at::Tensor>& l, const at::Tensor& y, const at::Tensor& sT) {
  ((y.to(at::kDouble) * p.dy).sum() + (sT.to(at::kDouble) * p.dsT).sum()).backward();
  Result r{y.detach().to(at::kDouble), sT.detach().to(at::kDouble), {}};
  for (auto& t : l) r.grads.push_back(t.grad().defined() ? t.grad().to(at::kDouble) : at::zeros_like(t, at::kDouble));
  return r;
}

Result run_op(const Problem& p, at::ScalarType dtype) {
  auto l = leaves(p, dtype);
  auto [y, sT] = wkv7_reset(l[0], l[1], l[2], l[3], l[4], l[5], l[6], p.reset, l[7]);
  return finish(p, l, y, sT);
}

// The reference: every sample cut into pieces at its restarts, each piece a wkv7_state_passing
// call from the state it starts in; float64 on inputs rounded to `dtype` as the op sees them.
Result run_split_reference(const Problem& p, at::ScalarType dtype) {
  Problem rounded = p;
  for (auto& t : rounded.in) t = t.to(dtype).to(at::kDouble);
  if (dtype != at::kDouble) {
    rounded.s0 = p.s0.to(at::kFloat).to(at::kDouble);
    rounded.s_reset = p.s_reset.to(at::kFloat).to(at::kDouble);
  }
  auto l = leaves(rounded, at::kDouble);
  const int64_t B = p.reset.size(0), T = p.reset.size(1);
  std::vector<at::Tensor> ys, sTs;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> cuts{0};
    for (int64_t t = 1; t < T; ++t)
      if (p.reset[b][t].item<bool>()) cuts.push_back(t);
    cuts.push_back(T);
    at::Tensor state = p.reset[b][0].item<bool>() ? (l[7].dim() == 3 ? l[7] : l[7][b]) : l[6][b];
    std::vector<at::Tensor> pieces;
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      if (i > 0) state = l[7].dim() == 3 ? l[7] : l[7][b];
      auto part = [&](int j) { return l[j].slice(0, b, b + 1).slice(1, cuts[i], cuts[i + 1]); };
      auto [y, sT] = wkv7_state_passing(part(0), part(1), part(2), part(3), part(4), part(5), state.unsqueeze(0));
      pieces.push_back(y);
      state = sT[0];
    }
    ys.push_back(at::cat(pieces, 1));
    sTs.push_back(state);
  }
  return finish(rounded, l, at::cat(ys, 0), at::stack(sTs, 0));
}

double worst(const Result& got, const Result& want, std::string* where) {
  static const char* const names[] = {"dr", "dw", "dk", "dv", "da", "db", "ds0", "ds_reset"};
  double w = relative_error(got.y, want.y);
  *where = "y";
  const double es = relative_error(got.sT, want.sT);
  if (es > w) w = es, *where = "sT";
  for (size_t i = 0; i < got.grads.size(); ++i) {
    const double e = relative_error(got.grads[i], want.grads[i]);
    if (e > w) w = e, *where = names[i];
  }
  return w;
}

// Restarts at the first step, inside and at the edge of the kernels' 16-step chunks, on two
// steps in a row, at the last step; one sample without any.
const std::vector<std::vector<int64_t>> kRestarts = {{0, 5, 6, 16, 30, 44}, {}, {13, 31, 32}};

TEST(Wkv7Reset, MatchesTheSplitReference) {
  struct Shape { int64_t T, N; bool shared; };
  for (const Shape s : {Shape{45, 16, true}, Shape{45, 16, false}, Shape{48, 64, true}, Shape{33, 8, false}}) {
    std::vector<std::vector<int64_t>> restarts;
    for (const auto& r : kRestarts) {
      std::vector<int64_t> kept;
      for (int64_t t : r)
        if (t < s.T) kept.push_back(t);
      restarts.push_back(kept);
    }
    const Problem p = make_problem(3, s.T, 2, s.N, s.shared, restarts, 7 + s.T + s.N);
    for (auto [dtype, bound] : {std::pair{at::kDouble, 1e-12}, std::pair{at::kFloat, 1e-4}, std::pair{at::kBFloat16, 1e-2}}) {
      std::string where;
      const double e = worst(run_op(p, dtype), run_split_reference(p, dtype), &where);
      std::printf("  reset T %lld N %lld %s %s: worst %.2e (%s)\n", (long long)s.T, (long long)s.N,
                  s.shared ? "shared" : "per sample", c10::toString(dtype), e, where.c_str());
      EXPECT_LE(e, bound) << "T " << s.T << " N " << s.N << " " << c10::toString(dtype) << ": " << where;
    }
  }
}

// With no restart marked, the op is wkv7_state_passing, bit for bit.
TEST(Wkv7Reset, WithoutRestartsIsStatePassing) {
  const Problem p = make_problem(2, 40, 2, 16, true, {{}, {}}, 3);
  for (at::ScalarType dtype : {at::kDouble, at::kFloat, at::kBFloat16}) {
    const Result got = run_op(p, dtype);
    auto l = leaves(p, dtype);
    auto [y, sT] = wkv7_state_passing(l[0], l[1], l[2], l[3], l[4], l[5], l[6]);
    const Result want = finish(p, l, y, sT);
    EXPECT_TRUE(at::equal(got.y, want.y)) << c10::toString(dtype);
    EXPECT_TRUE(at::equal(got.sT, want.sT)) << c10::toString(dtype);
    for (int i = 0; i < 7; ++i) EXPECT_TRUE(at::equal(got.grads[i], want.grads[i])) << i << " " << c10::toString(dtype);
    EXPECT_EQ(got.grads[7].abs().max().item<double>(), 0.0);  // no restart: s_reset unused
  }
}

TEST(Wkv7Reset, ArgumentErrorsNameTheArgument) {
  auto x = at::randn({2, 4, 3, 8});
  const at::Tensor s = at::zeros({2, 3, 8, 8});
  testing::expect_error_naming([&] { wkv7_reset(x, x, x, x, x, x, s, at::zeros({2, 5}, at::kBool), s); }, "reset");
  testing::expect_error_naming([&] { wkv7_reset(x, x, x, x, x, x, s, at::zeros({2, 4}, at::kLong), s); }, "reset");
  testing::expect_error_naming([&] { wkv7_reset(x, x, x, x, x, x, s, at::zeros({2, 4}, at::kBool), at::zeros({3, 8, 7})); }, "s_reset");
}

}  // namespace
}  // namespace rwkv7
