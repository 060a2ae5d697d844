// The fast WKV-7 CPU kernel (every instruction set this processor runs, float32 and bfloat16,
// one and three threads) against the reference loops in float64, at shapes the fast paths treat
// differently: T not a multiple of the chunk, head sizes with and without a specialised backward
// (8, 24: the generic rows; 16, 64, 128: the fixed ones), B x H not a multiple of the threads,
// and from an initial state, shared or per sample.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "golden.h"
#include "ops/wkv7/cpu_fast/wkv7_fast.h"
#include "rwkv7/model/wkv7.h"

namespace rwkv7 {
namespace {

using testing::relative_error;
namespace fast = rwkv7_ops::wkv7_fast;

struct Shape {
  int64_t B, T, H, N;
  int s0;  // 0: none, 1: shared [H, N, N], 2: per sample [B, H, N, N]
};

// The op's inputs as the model makes them (decay w <= -0.5, a = -kk, b = kk * rate).
std::vector<at::Tensor> make_inputs(const Shape& s, at::ScalarType dtype) {
  auto x = [&] { return at::randn({s.B, s.T, s.H, s.N}, at::kDouble); };
  const at::Tensor kk = x() / x().norm(2, -1, true);  // (any unit direction)
  std::vector<at::Tensor> in = {x(), -at::softplus(-x()) - 0.5, x(), x(), -kk, kk * at::rand_like(kk), x()};  // + dy
  for (auto& t : in) t = t.to(dtype);
  return in;
}

struct Outputs {
  std::vector<at::Tensor> t;  // y, dr, dw, dk, dv, da, db, ds0 (if any), as float64
};

// The reference loops: autograd through the op on float64 copies of the (rounded) inputs.
Outputs reference(const std::vector<at::Tensor>& in, const at::Tensor& s0) {
  std::vector<at::Tensor> x;
  for (int i = 0; i < 6; ++i) x.push_back(in[i].to(at::kDouble).requires_grad_(true));
  at::Tensor s = s0.defined() ? s0.to(at::kDouble).requires_grad_(true) : at::Tensor();
  at::Tensor y = s0.defined() ? wkv7_state(x[0], x[1], x[2], x[3], x[4], x[5], s) : wkv7(x[0], x[1], x[2], x[3], x[4], x[5]);
  (y * in[6].to(at::kDouble)).sum().backward();
  Outputs o{{y.detach()}};
  for (auto& t : x) o.t.push_back(t.grad());
  if (s.defined()) o.t.push_back(s.grad());
  return o;
}

Outputs run_fast(const std::vector<at::Tensor>& in, const at::Tensor& s0, const char* isa) {
  const at::Tensor& r = in[0];
  fast::Problem p;
  p.B = r.size(0), p.T = r.size(1), p.H = r.size(2), p.N = r.size(3);
  p.bf16 = r.scalar_type() == at::kBFloat16;
  p.r = in[0].data_ptr(), p.w = in[1].data_ptr(), p.k = in[2].data_ptr(), p.v = in[3].data_ptr();
  p.a = in[4].data_ptr(), p.b = in[5].data_ptr(), p.dy = in[6].data_ptr();
  const at::Tensor s0f = s0.defined() ? s0.to(at::kFloat).contiguous() : at::Tensor();
  if (s0.defined()) {
    p.s0 = s0f.data_ptr<float>();
    p.s0_batch_stride = s0.dim() == 4 ? p.H * p.N * p.N : 0;
  }
  at::Tensor y = at::empty_like(r), saved = at::empty({p.B, p.H, p.chunks(), p.N, p.N}, at::kFloat);
  std::vector<at::Tensor> g;
  for (int i = 0; i < 6; ++i) g.push_back(at::empty_like(r));
  at::Tensor ds0 = at::empty({p.B, p.H, p.N, p.N}, at::kFloat);
  p.y = y.data_ptr(), p.saved = saved.data_ptr<float>();
  fast::run_forward(p, isa);
  p.dr = g[0].data_ptr(), p.dw = g[1].data_ptr(), p.dk = g[2].data_ptr(), p.dv = g[3].data_ptr();
  p.da = g[4].data_ptr(), p.db = g[5].data_ptr(), p.ds0 = s0.defined() ? ds0.data_ptr<float>() : nullptr;
  fast::run_backward(p, isa);
  Outputs o{{y.to(at::kDouble)}};
  for (auto& t : g) o.t.push_back(t.to(at::kDouble));
  if (s0.defined()) o.t.push_back((s0.dim() == 3 ? ds0.sum(0) : ds0).to(at::kDouble));  // shared: the batch's sum
  return o;
}

TEST(Wkv7CpuFast, EveryInstructionSetMatchesTheFloat64Reference) {
  const std::vector<Shape> shapes = {{1, 37, 3, 8, 0}, {2, 19, 3, 16, 1}, {1, 40, 2, 64, 0},
                                     {3, 17, 1, 128, 2}, {2, 21, 3, 24, 0}, {1, 33, 5, 64, 2}};
  const char* names[] = {"y", "dr", "dw", "dk", "dv", "da", "db", "ds0"};
  int runs = 0;
  double worst[2] = {0, 0};  // float32, bf16
  for (const char* isa : {"baseline", "avx2", "avx512"}) {
    if (!fast::isa_available(isa)) continue;
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      // the bounds of the golden cases (docs/testing.md): float32 1e-4; bf16 1e-2, the rounding of
      // inputs and outputs to 8 mantissa bits (here the reference sees the same rounded inputs)
      const double bound = dtype == at::kFloat ? 1e-4 : 1e-2;
      for (const Shape& s : shapes) {
        at::manual_seed(s.T * 131 + s.N);
        const std::vector<at::Tensor> in = make_inputs(s, dtype);
        const at::Tensor s0 = s.s0 == 0 ? at::Tensor()
                              : s.s0 == 1 ? at::randn({s.H, s.N, s.N}, at::kFloat)
                                          : at::randn({s.B, s.H, s.N, s.N}, at::kFloat);
        const Outputs want = reference(in, s0);
        for (const int threads : {1, 3}) {
          at::set_num_threads(threads);
          const Outputs got = run_fast(in, s0, isa);
          ASSERT_EQ(got.t.size(), want.t.size());
          for (size_t i = 0; i < want.t.size(); ++i) {
            const double e = relative_error(got.t[i], want.t[i]);
            worst[dtype == at::kBFloat16] = std::max(worst[dtype == at::kBFloat16], e);
            EXPECT_LE(e, bound)
                << isa << " " << c10::toString(dtype) << " B" << s.B << " T" << s.T << " H" << s.H << " N" << s.N
                << " s0 " << s.s0 << " threads " << threads << ": " << names[i];
          }
          ++runs;
        }
      }
    }
  }
  at::set_num_threads(1);
  std::printf("[ fast ] %d runs, worst relative error float32 %.3g, bf16 %.3g; the op uses %s here\n", runs,
              worst[0], worst[1], fast::isa_in_use());
  EXPECT_GE(runs, 2 * 6 * 2);  // at least the baseline set, both dtypes, every shape, both thread counts
}

// The "3 threads" runs above are parallel only if the library's at::parallel_for is: the OpenMP
// pragma in ATen's header is ignored by a file compiled without -fopenmp (as until 2026-12).
TEST(Wkv7CpuFast, ParallelForRunsOnTheThreadsAsked) {
  for (const int threads : {1, 3}) {
    at::set_num_threads(threads);
    EXPECT_EQ(fast::threads_over(24), threads) << "at::set_num_threads(" << threads << ")";
    EXPECT_EQ(fast::threads_over(2), std::min(threads, 2)) << "2 (batch, head) pairs";
  }
  at::set_num_threads(1);
}

}  // namespace
}  // namespace rwkv7
