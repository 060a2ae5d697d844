// The WKV-7 CUDA kernels executed on the CPU through the CUDA emulation (tests/cuda_emu), held
// against the fp64 golden cases and against the CPU op (wkv7_cpu.cpp, the slow reference). These
// run on every machine; tests/test_cuda.cpp runs the same kernels on a real GPU where one exists.
//
// The same file is built twice: as cuda_emu_tests, and with ThreadSanitizer as
// cuda_emu_tests_tsan, where a missing __syncthreads() shows up as a data race.
#include "tests/cuda_emu/cuda_emu.h"  // the CUDA environment first: the kernels compile against it
#include "ops/wkv7/wkv7_kernels.cuh"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

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
using Case = testing::Wkv7Case;  // field -> tensor

// What the emulated kernels produced, in float64.
struct KernelRun {
  at::Tensor y;
  std::vector<at::Tensor> grads;  // dr dw dk dv da db
};

// The launchers' pointers to the six inputs r, w, k, v, a, b and to their six gradients.
rwkv7_cuda::Wkv7Inputs inputs_of(const std::vector<at::Tensor>& in) {
  return {in[0].data_ptr(), in[1].data_ptr(), in[2].data_ptr(), in[3].data_ptr(), in[4].data_ptr(), in[5].data_ptr()};
}

rwkv7_cuda::Wkv7Grads grads_of(const std::vector<at::Tensor>& g) {
  return {g[0].data_ptr(), g[1].data_ptr(), g[2].data_ptr(), g[3].data_ptr(), g[4].data_ptr(), g[5].data_ptr()};
}

// The op's CUDA wrapper does exactly this on a GPU: contiguous inputs of one dtype, the
// forward saves its state, the backward takes dy and the saved state.
// kN: the head size; kRaw: the case's "w" is the raw decay input x (wkv7_raw_decay's kernels).
template <int kN = rwkv7_cuda::kHeadSize, bool kRaw = false>
KernelRun run_kernels(const Case& c, at::ScalarType dtype) {
  const at::Tensor& r0 = c.at("r");
  const int B = int(r0.size(0)), T = int(r0.size(1)), H = int(r0.size(2)), N = int(r0.size(3));
  EXPECT_EQ(N, kN);
  std::vector<at::Tensor> in;
  for (const char* n : kInputs) in.push_back(c.at(n).to(dtype).contiguous());
  const at::Tensor dy = c.at("dy").to(dtype).contiguous();
  at::Tensor y = at::empty_like(in[0]);
  at::Tensor s = at::empty({B, H, T / rwkv7_cuda::kChunk, N, N}, at::kFloat);
  at::Tensor sa = at::empty({B, T, H, N}, at::kFloat);
  std::vector<at::Tensor> g;
  for (int i = 0; i < 6; ++i) g.push_back(at::empty_like(in[0]));
  rwkv7_cuda::Wkv7ForwardArgs forward;
  forward.in = inputs_of(in);
  forward.y = y.data_ptr();
  forward.s = s.data_ptr<float>();
  forward.sa = sa.data_ptr<float>();
  rwkv7_cuda::Wkv7BackwardArgs backward;
  backward.in = inputs_of(in);
  backward.dy = dy.data_ptr();
  backward.s = s.data_ptr<float>();
  backward.sa = sa.data_ptr<float>();
  backward.grad = grads_of(g);
  auto launch = [&](auto element) {
    using T_ = decltype(element);
    EXPECT_EQ((rwkv7_cuda::launch_forward<T_, kN, kRaw>)(B, T, H, forward, nullptr), cudaSuccess);
    EXPECT_EQ((rwkv7_cuda::launch_backward<T_, kN, kRaw>)(B, T, H, backward, nullptr), cudaSuccess);
  };
  if (dtype == at::kBFloat16)
    launch(__nv_bfloat16{});
  else
    launch(float{});
  KernelRun out{y.to(at::kDouble), {}};
  for (auto& t : g) out.grads.push_back(t.to(at::kDouble));
  return out;
}

// The CPU op (autograd through rwkv7::wkv7) on the same inputs, in float64: the reference. With
// `raw`, "w" is x and the reference is the composite w = -softplus(-x) - 0.5, then wkv7.
KernelRun run_cpu_reference(const Case& c, at::ScalarType input_dtype, bool raw = false) {
  std::vector<at::Tensor> in;  // inputs rounded as the kernel sees them, then computed in fp64
  for (const char* n : kInputs)
    in.push_back(c.at(n).to(input_dtype).to(at::kDouble).detach().requires_grad_(true));
  const at::Tensor w = raw ? -at::softplus(-in[1]) - 0.5 : in[1];
  at::Tensor y = wkv7(in[0], w, in[2], in[3], in[4], in[5]);
  (y * c.at("dy").to(input_dtype).to(at::kDouble)).sum().backward();
  KernelRun out{y.detach(), {}};
  for (auto& t : in) out.grads.push_back(t.grad());
  return out;
}

// worst relative error over y and the six gradients, and where it is
double worst_error(const KernelRun& got, const KernelRun& want, std::string* where) {
  double worst = relative_error(got.y, want.y);
  *where = "y";
  for (int i = 0; i < 6; ++i) {
    const double e = relative_error(got.grads[i], want.grads[i]);
    if (e > worst) worst = e, *where = kGrads[i];
  }
  return worst;
}

std::map<std::string, Case> golden_cases() { return testing::wkv7_golden_cases(); }

KernelRun golden_of(const Case& c) {
  KernelRun g{c.at("y"), {}};
  for (const char* n : kGrads) g.grads.push_back(c.at(n));
  return g;
}

// Inputs shaped as the model makes them: w <= -0.5 (the soft clamp), a = -kk with kk unit per
// head, b = kk * sigmoid(.); r, k, v, dy standard normal.
// With `raw`, "w" holds the raw decay input x instead (unclamped, standard normal).
Case model_like_case(int B, int T, int H, uint64_t seed, int N = rwkv7_cuda::kHeadSize, bool raw = false) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto randn = [&] { return at::randn({B, T, H, N}, gen, at::kDouble); };
  Case c;
  c["r"] = randn();
  c["k"] = randn();
  c["v"] = randn();
  c["w"] = raw ? randn() : -at::softplus(-randn()) - 0.5;
  at::Tensor kk = randn();
  kk = kk / kk.norm(2, -1, true);
  c["a"] = -kk;
  c["b"] = kk * at::sigmoid(randn());
  c["dy"] = randn();
  return c;
}

// ---- against the seed's fp64 golden cases ----

TEST(CudaEmu, Wkv7GoldenCasesFloat32) {
  int tested = 0;
  for (auto& [name, c] : golden_cases()) {
    if (c["r"].size(1) % rwkv7_cuda::kChunk != 0) continue;  // the kernel needs T % 16 == 0
    std::string where;
    const double err = worst_error(run_kernels(c, at::kFloat), golden_of(c), &where);
    std::printf("  fp32 %s: worst %.2e (%s)\n", name.c_str(), err, where.c_str());
    EXPECT_LE(err, 1e-4) << name << ": " << where;  // the CPU op's fp32 bound
    ++tested;
  }
  EXPECT_EQ(tested, 2);  // B2_T32_H2 and B1_T64_H1_slowdecay
}

// bf16: the inputs and outputs carry 8 mantissa bits; the bound is the CPU op's bf16 bound.
TEST(CudaEmu, Wkv7GoldenCasesBFloat16) {
  int tested = 0;
  for (auto& [name, c] : golden_cases()) {
    if (c["r"].size(1) % rwkv7_cuda::kChunk != 0) continue;
    std::string where;
    const double err = worst_error(run_kernels(c, at::kBFloat16), golden_of(c), &where);
    std::printf("  bf16 %s: worst %.2e (%s)\n", name.c_str(), err, where.c_str());
    EXPECT_LE(err, 1e-2) << name << ": " << where;
    ++tested;
  }
  EXPECT_EQ(tested, 2);  // B2_T32_H2 and B1_T64_H1_slowdecay (B1_T20_H1 has T % 16 != 0)
}

// ---- against the CPU op, on shapes that exercise the edges ----

struct Shape {
  int B, T, H;
};
const Shape kShapes[] = {{1, 16, 1},   // one chunk
                         {2, 48, 3},   // several chunks, B and H above 1
                         {3, 32, 2}};  // B > H: blockIdx.x and .y must not be swapped

TEST(CudaEmu, Wkv7MatchesCpuOpFloat32) {
  uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    const Case c = model_like_case(s.B, s.T, s.H, seed++);
    std::string where;
    const double err = worst_error(run_kernels(c, at::kFloat), run_cpu_reference(c, at::kFloat), &where);
    std::printf("  fp32 B%d T%d H%d: worst %.2e (%s)\n", s.B, s.T, s.H, err, where.c_str());
    EXPECT_LE(err, 1e-4) << "B" << s.B << " T" << s.T << " H" << s.H << ": " << where;
  }
}

TEST(CudaEmu, Wkv7MatchesCpuOpBFloat16) {
  uint64_t seed = 11;
  for (const Shape& s : kShapes) {
    const Case c = model_like_case(s.B, s.T, s.H, seed++);
    std::string where;
    const double err =
        worst_error(run_kernels(c, at::kBFloat16), run_cpu_reference(c, at::kBFloat16), &where);
    std::printf("  bf16 B%d T%d H%d: worst %.2e (%s)\n", s.B, s.T, s.H, err, where.c_str());
    EXPECT_LE(err, 1e-2) << "B" << s.B << " T" << s.T << " H" << s.H << ": " << where;
  }
}

// ---- head size 128, and the raw decay input (fused_ops: 1) ----

TEST(CudaEmu, Wkv7HeadSize128MatchesCpuOp) {
  const Case c = model_like_case(2, 32, 2, 21, 128);
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    std::string where;
    const double err = worst_error(run_kernels<128>(c, dtype), run_cpu_reference(c, dtype), &where);
    std::printf("  N128 %s: worst %.2e (%s)\n", c10::toString(dtype), err, where.c_str());
    EXPECT_LE(err, dtype == at::kFloat ? 1e-4 : 1e-2) << where;  // the N = 64 bounds
  }
}

// The kernel computes the soft clamp in float from x; the reference differentiates the composite.
TEST(CudaEmu, Wkv7RawDecayMatchesTheComposite) {
  for (const int N : {64, 128}) {
    const Case c = model_like_case(2, 32, 2, 31 + N, N, /*raw=*/true);
    for (const auto dtype : {at::kFloat, at::kBFloat16}) {
      std::string where;
      const KernelRun got = N == 64 ? run_kernels<64, true>(c, dtype) : run_kernels<128, true>(c, dtype);
      const double err = worst_error(got, run_cpu_reference(c, dtype, /*raw=*/true), &where);
      std::printf("  raw decay N%d %s: worst %.2e (%s)\n", N, c10::toString(dtype), err, where.c_str());
      EXPECT_LE(err, dtype == at::kFloat ? 1e-4 : 1e-2) << "N" << N << " " << where;
    }
  }
}

// ---- an initial state s0 (wkv7_state: state tuning) ----

struct StateRun {
  KernelRun run;
  at::Tensor ds0;  // in s0's shape: summed over the batch for a shared [H, N, N] state
  at::Tensor sT;   // the final state [B, H, N, N] (state passing)
  at::Tensor ds_reset;  // with restarts: in s_reset's shape
};

// The kernels with s0 ([H, N, N] shared, batch stride 0; or [B, H, N, N]), as wkv7_cuda.cpp
// launches them: s0 read as float, dL/dS_0 written per sample and summed for a shared state.
// The final state is always written; with dsT defined (wkv7_state_passing) the backward starts
// from it. With `reset` ([B, T] bool) defined (wkv7_reset), the state restarts from s_reset
// where it says, and dL/ds_reset comes back as ds0 does.
template <int kN = 64, bool kRaw = false>
StateRun run_state_kernels(const Case& c, const at::Tensor& s0, at::ScalarType dtype, const at::Tensor& dsT = {},
                           const at::Tensor& reset = {}, const at::Tensor& s_reset = {}) {
  const at::Tensor& r0 = c.at("r");
  const int B = int(r0.size(0)), T = int(r0.size(1)), H = int(r0.size(2)), N = int(r0.size(3));
  std::vector<at::Tensor> in;
  for (const char* n : kInputs) in.push_back(c.at(n).to(dtype).contiguous());
  const at::Tensor dy = c.at("dy").to(dtype).contiguous();
  const at::Tensor S0 = s0.to(at::kFloat).contiguous();
  const long stride = S0.dim() == 4 ? long(H) * N * N : 0;
  at::Tensor y = at::empty_like(in[0]), ds0 = at::empty({B, H, N, N}, at::kFloat), sT = at::empty({B, H, N, N}, at::kFloat);
  at::Tensor s = at::empty({B, H, T / rwkv7_cuda::kChunk, N, N}, at::kFloat), sa = at::empty({B, T, H, N}, at::kFloat);
  const at::Tensor DST = dsT.defined() ? dsT.to(at::kFloat).contiguous() : at::Tensor();
  std::vector<at::Tensor> g;
  for (int i = 0; i < 6; ++i) g.push_back(at::empty_like(in[0]));
  rwkv7_cuda::Wkv7ForwardArgs forward;
  forward.in = inputs_of(in);
  forward.y = y.data_ptr();
  forward.s = s.data_ptr<float>();
  forward.sa = sa.data_ptr<float>();
  forward.s0 = S0.data_ptr<float>();
  forward.s0_batch_stride = stride;
  forward.sT = sT.data_ptr<float>();
  rwkv7_cuda::Wkv7BackwardArgs backward;
  backward.in = inputs_of(in);
  backward.dy = dy.data_ptr();
  backward.s = s.data_ptr<float>();
  backward.sa = sa.data_ptr<float>();
  backward.grad = grads_of(g);
  backward.ds0 = ds0.data_ptr<float>();
  backward.dsT = DST.defined() ? DST.data_ptr<float>() : nullptr;
  const at::Tensor RESET = reset.defined() ? reset.contiguous() : at::Tensor();
  const at::Tensor SR = reset.defined() ? s_reset.to(at::kFloat).contiguous() : at::Tensor();
  at::Tensor ds_reset = at::zeros({B, H, N, N}, at::kFloat);
  if (reset.defined()) {
    rwkv7_cuda::Wkv7Restarts restarts;
    restarts.reset = RESET.data_ptr<bool>();
    restarts.s_reset = SR.data_ptr<float>();
    restarts.s_reset_batch_stride = SR.dim() == 4 ? long(H) * N * N : 0;
    forward.restarts = restarts;
    restarts.ds_reset = ds_reset.data_ptr<float>();
    backward.restarts = restarts;
    backward.s0 = S0.data_ptr<float>();
    backward.s0_batch_stride = stride;
  }
  auto launch = [&](auto element) {
    using T_ = decltype(element);
    EXPECT_EQ((rwkv7_cuda::launch_forward<T_, kN, kRaw>)(B, T, H, forward, nullptr), cudaSuccess);
    EXPECT_EQ((rwkv7_cuda::launch_backward<T_, kN, kRaw>)(B, T, H, backward, nullptr), cudaSuccess);
  };
  if (dtype == at::kBFloat16)
    launch(__nv_bfloat16{});
  else
    launch(float{});
  StateRun out{{y.to(at::kDouble), {}}, (s0.dim() == 3 ? ds0.sum(0) : ds0).to(at::kDouble), sT.to(at::kDouble),
               reset.defined() ? (SR.dim() == 3 ? ds_reset.sum(0) : ds_reset).to(at::kDouble) : at::Tensor()};
  for (auto& t : g) out.run.grads.push_back(t.to(at::kDouble));
  return out;
}

double worst_state_error(const StateRun& got, const StateRun& want, std::string* where) {
  double worst = worst_error(got.run, want.run, where);
  const double e = relative_error(got.ds0, want.ds0);
  if (e > worst) worst = e, *where = "ds0";
  return worst;
}

// RWKV-PEFT's fp64 cases (tests/data/wkv7_state_cases.pth): one time_state "s" shared by the
// batch, its gradient "ds" summed over the batch.
TEST(CudaEmu, Wkv7StateGoldenCasesFloat32) {
  int tested = 0;
  for (const auto& [name, c] : testing::wkv7_golden_cases("wkv7_state_cases.pth")) {
    if (c.at("r").size(1) % rwkv7_cuda::kChunk != 0) continue;
    StateRun want{golden_of(c), c.at("ds")};
    std::string where;
    const double err = worst_state_error(run_state_kernels(c, c.at("s"), at::kFloat), want, &where);
    std::printf("  state fp32 %s: worst %.2e (%s)\n", name.c_str(), err, where.c_str());
    EXPECT_LE(err, 1e-4) << name << ": " << where;  // the fp32 bound of the cases without a state
    ++tested;
  }
  EXPECT_EQ(tested, 2);  // B2_T32_H2 and B2_T16_H1_slowdecay_bigstate (B1_T20_H1 has T % 16 != 0)
}

// wkv7_state_passing's fp64 cases made from BlinkDL/RWKV-CUDA's reference
// (tests/data/wkv7_state_passing_cases.pth): the final state out, its gradient dsT in. The
// bounds are the plain op's.
TEST(CudaEmu, Wkv7StatePassingGoldenCases) {
  int tested = 0;
  for (const auto& [name, c] : testing::wkv7_golden_cases("wkv7_state_passing_cases.pth")) {
    const int64_t T = c.at("r").size(1), N = c.at("r").size(3);
    if (T % rwkv7_cuda::kChunk != 0 || (N != 64 && N != 128)) continue;
    StateRun want{golden_of(c), c.at("ds0"), c.at("sT")};
    for (auto [dtype, bound] : {std::pair{at::kFloat, 1e-4}, std::pair{at::kBFloat16, 1e-2}}) {
      const StateRun got = N == 64 ? run_state_kernels<64>(c, c.at("s0"), dtype, c.at("dsT"))
                                   : run_state_kernels<128>(c, c.at("s0"), dtype, c.at("dsT"));
      std::string where;
      double err = worst_state_error(got, want, &where);
      const double e = relative_error(got.sT, want.sT);
      if (e > err) err = e, where = "sT";
      std::printf("  state passing %s %s: worst %.2e (%s)\n", c10::toString(dtype), name.c_str(), err, where.c_str());
      EXPECT_LE(err, bound) << name << " " << c10::toString(dtype) << ": " << where;
    }
    ++tested;
  }
  EXPECT_EQ(tested, 2);  // B2_T32_H2_N64 and B1_T16_H1_N128 (the other two are CPU-only shapes)
}

// A state per sample, and a shared one, against the CPU op's autograd in fp64 (inputs rounded
// as the kernel sees them).
TEST(CudaEmu, Wkv7StateMatchesCpuOp) {
  const Case c = model_like_case(3, 32, 2, 41);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
  for (const bool per_sample : {false, true}) {
    const at::Tensor s0 = at::randn(per_sample ? at::IntArrayRef{3, 2, 64, 64} : at::IntArrayRef{2, 64, 64}, gen,
                                    at::kDouble);
    for (const auto dtype : {at::kFloat, at::kBFloat16}) {
      std::vector<at::Tensor> in;
      for (const char* n : kInputs) in.push_back(c.at(n).to(dtype).to(at::kDouble).detach().requires_grad_(true));
      at::Tensor S0 = s0.to(at::kFloat).to(at::kDouble).detach().requires_grad_(true);
      const at::Tensor y = wkv7_state(in[0], in[1], in[2], in[3], in[4], in[5], S0);
      (y * c.at("dy").to(dtype).to(at::kDouble)).sum().backward();
      StateRun want{{y.detach(), {}}, S0.grad()};
      for (auto& t : in) want.run.grads.push_back(t.grad());
      std::string where;
      const double err = worst_state_error(run_state_kernels(c, s0, dtype), want, &where);
      std::printf("  state %s %s: worst %.2e (%s)\n", per_sample ? "per sample" : "shared", c10::toString(dtype), err,
                  where.c_str());
      EXPECT_LE(err, dtype == at::kFloat ? 1e-4 : 1e-2) << where;  // the bounds without a state
    }
  }
}

// wkv7_reset (packed documents) against the CPU op's autograd in fp64 (itself held to a reference
// that cuts the samples at their restarts, wkv7_reset_test.cpp). Restarts at the first step, in
// a chunk, at a chunk's first and last steps, twice in a row, at the last step: the backward
// rebuilds the state before each from the chunk's start (from s0 in the first chunk).
// kRaw: "w" is the raw decay input x (fused_ops: 1 with doc_reset: 1), the reference the composite.
template <int kN, bool kRaw = false>
void check_reset_kernels(int T, uint64_t seed) {
  const Case c = model_like_case(3, T, 2, seed, kN, kRaw);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
  const at::Tensor s0 = at::randn({3, 2, kN, kN}, gen, at::kDouble);
  const at::Tensor dsT = at::randn({3, 2, kN, kN}, gen, at::kDouble);
  at::Tensor reset = at::zeros({3, T}, at::kBool);
  for (int t : {0, 5, 15, 16, 17, 18, T - 1}) reset[0][t] = true;
  for (int t : {3, 31}) reset[2][t] = true;
  for (const bool shared : {true, false}) {
    const at::Tensor s_reset =
        at::randn(shared ? at::IntArrayRef{2, kN, kN} : at::IntArrayRef{3, 2, kN, kN}, gen, at::kDouble);
    for (const auto dtype : {at::kFloat, at::kBFloat16}) {
      std::vector<at::Tensor> in;
      for (const char* n : kInputs) in.push_back(c.at(n).to(dtype).to(at::kDouble).detach().requires_grad_(true));
      at::Tensor S0 = s0.to(at::kFloat).to(at::kDouble).detach().requires_grad_(true);
      at::Tensor SR = s_reset.to(at::kFloat).to(at::kDouble).detach().requires_grad_(true);
      const at::Tensor w = kRaw ? -at::softplus(-in[1]) - 0.5 : in[1];
      auto [y, sT] = wkv7_reset(in[0], w, in[2], in[3], in[4], in[5], S0, reset, SR);
      ((y * c.at("dy").to(dtype).to(at::kDouble)).sum() + (sT * dsT.to(at::kFloat).to(at::kDouble)).sum()).backward();
      StateRun want{{y.detach(), {}}, S0.grad(), sT.detach(), SR.grad()};
      for (auto& t : in) want.run.grads.push_back(t.grad());
      const StateRun got = run_state_kernels<kN, kRaw>(c, s0, dtype, dsT, reset, s_reset);
      std::string where;
      double err = worst_state_error(got, want, &where);
      for (auto [name, g, w] : {std::tuple{"sT", got.sT, want.sT}, std::tuple{"ds_reset", got.ds_reset, want.ds_reset}}) {
        const double e = relative_error(g, w);
        if (e > err) err = e, where = name;
      }
      std::printf("  reset N %d%s %s %s: worst %.2e (%s)\n", kN, kRaw ? " raw decay" : "", shared ? "shared" : "per sample",
                  c10::toString(dtype), err, where.c_str());
      EXPECT_LE(err, dtype == at::kFloat ? 1e-4 : 1e-2) << where;  // the bounds without restarts
    }
  }
}

TEST(CudaEmu, Wkv7ResetMatchesCpuOp) { check_reset_kernels<64>(48, 51); }
TEST(CudaEmu, Wkv7ResetHeadSize128MatchesCpuOp) { check_reset_kernels<128>(32, 52); }
TEST(CudaEmu, Wkv7ResetRawDecayMatchesTheComposite) { check_reset_kernels<64, true>(48, 53); }

// ---- the launcher's contract ----

// Inference passes no buffers for the saved state; y must not change.
TEST(CudaEmu, Wkv7ForwardWithoutSavedStateGivesTheSameOutput) {
  const Case c = model_like_case(2, 32, 2, 99);
  std::vector<at::Tensor> in;
  for (const char* n : kInputs) in.push_back(c.at(n).to(at::kFloat).contiguous());
  at::Tensor y_saved = at::empty_like(in[0]), y_plain = at::empty_like(in[0]);
  at::Tensor s = at::empty({2, 2, 2, 64, 64}, at::kFloat), sa = at::empty({2, 32, 2, 64}, at::kFloat);
  auto fwd = [&](at::Tensor& y, float* sp, float* sap) {
    rwkv7_cuda::Wkv7ForwardArgs args;
    args.in = inputs_of(in);
    args.y = y.data_ptr();
    args.s = sp;
    args.sa = sap;
    return rwkv7_cuda::launch_forward<float>(2, 32, 2, args, nullptr);
  };
  ASSERT_EQ(fwd(y_saved, s.data_ptr<float>(), sa.data_ptr<float>()), cudaSuccess);
  ASSERT_EQ(fwd(y_plain, nullptr, nullptr), cudaSuccess);
  EXPECT_TRUE(at::equal(y_saved, y_plain));
}

TEST(CudaEmu, Wkv7LauncherRejectsTNotAMultipleOfTheChunk) {
  std::vector<float> x(20 * 64);
  rwkv7_cuda::Wkv7ForwardArgs args;
  args.in = {x.data(), x.data(), x.data(), x.data(), x.data(), x.data()};
  args.y = x.data();
  EXPECT_EQ(rwkv7_cuda::launch_forward<float>(1, 20, 1, args, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace rwkv7
