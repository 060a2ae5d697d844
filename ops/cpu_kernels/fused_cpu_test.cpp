// The fused ops' one-pass CPU kernels (float32 and bfloat16, every instruction set this processor
// runs, one and three threads) against the same ops in float64, which run the composite reference
// of each ops/<op>/<op>_cpu.cpp, on the same (rounded) inputs: forward and backward, at odd
// shapes (rows not a multiple of the block, T 7 with blocks across sequences, C 40, N 8, V 257).
// Per-channel gradients are summed in fixed blocks, so one thread and three agree bit for bit.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "golden.h"
#include "ops/cpu_kernels/cpu_isa.h"

namespace rwkv7 {
namespace {

using rwkv7_ops::CpuIsa;
using testing::relative_error;

// rwkv7::<name>(args...), its outputs in order
std::vector<at::Tensor> call(const std::string& name, const std::vector<c10::IValue>& args) {
  const c10::OperatorHandle op = c10::Dispatcher::singleton().findSchemaOrThrow(("rwkv7::" + name).c_str(), "");
  std::vector<c10::IValue> stack(args);
  op.callBoxed(&stack);
  std::vector<at::Tensor> out;
  for (const c10::IValue& v : stack) out.push_back(v.toTensor());
  return out;
}

// One op's case: its arguments in float64 (tensors and the rest), and its output gradients.
struct Case {
  std::string op;
  std::vector<c10::IValue> args;
  std::vector<at::Tensor> output_grads;
};

std::vector<c10::IValue> in_dtype(const std::vector<c10::IValue>& args, at::ScalarType dtype) {
  std::vector<c10::IValue> out;
  for (const c10::IValue& a : args)
    out.push_back(a.isTensor() && a.toTensor().is_floating_point() ? c10::IValue(a.toTensor().to(dtype)) : a);
  return out;
}

// forward outputs, then the backward's (rwkv7::<op>_backward(args..., output grads...))
std::vector<at::Tensor> forward_and_backward(const Case& c, at::ScalarType dtype) {
  const std::vector<c10::IValue> args = in_dtype(c.args, dtype);
  std::vector<at::Tensor> out = call(c.op, args);
  std::vector<c10::IValue> backward_args = args;
  for (const at::Tensor& g : c.output_grads) backward_args.push_back(g.to(dtype));
  for (const at::Tensor& g : call(c.op + "_backward", backward_args)) out.push_back(g);
  return out;
}

// What the fast kernel sees in `dtype`, widened back: the reference runs on the same values.
Case rounded(const Case& c, at::ScalarType dtype) {
  Case r{c.op, in_dtype(in_dtype(c.args, dtype), at::kDouble), {}};
  for (const at::Tensor& g : c.output_grads) r.output_grads.push_back(g.to(dtype).to(at::kDouble));
  return r;
}

std::vector<Case> cases() {
  auto g = at::make_generator<at::CPUGeneratorImpl>(7);
  auto randn = [&](std::vector<int64_t> s) { return at::randn(s, g, at::kDouble); };
  auto rand = [&](std::vector<int64_t> s) { return at::rand(s, g, at::kDouble); };
  const int64_t B = 5, T = 7, C = 40, H = 5;  // 35 rows: one whole block and a part, across sequences
  std::vector<Case> all;
  all.push_back({"token_shift_mix", {randn({B, T, C}), rand({6, C})}, {randn({6, B, T, C})}});
  all.push_back({"token_shift_mix", {randn({2, 33, C}), rand({1, C})}, {randn({1, 2, 33, C})}});
  all.push_back({"relu_square", {randn({3, 4001, 5})}, {randn({3, 4001, 5})}});
  all.push_back({"vres_gate", {randn({B, T, C}), randn({B, T, C}), randn({B, T, C}), randn({C})}, {randn({B, T, C})}});
  all.push_back({"kk_pre",
                 {randn({B, T, C}), randn({B, T, C}), randn({C}), rand({C}) + 0.5, rand({C}), c10::IValue(H)},
                 {randn({B, T, C}), randn({B, T, C}), randn({B, T, C})}});
  all.push_back({"lnx_rkvres_xg",
                 {randn({B, T, C}), randn({B, T, C}), randn({B, T, C}), randn({B, T, C}), randn({H, C / H}),
                  randn({B, T, C}), randn({C}), randn({C}), c10::IValue(H), c10::IValue(64e-5)},
                 {randn({B, T, C})}});
  const at::Tensor targets = at::randint(257, {B * T}, g, at::kLong);
  all.push_back({"cross_entropy_l2wrap", {randn({B * T, 257}) * 3, targets}, {at::full({}, 0.7, at::kDouble)}});
  return all;
}

TEST(FusedCpu, EveryInstructionSetMatchesTheFloat64Reference) {
  int runs = 0;
  double worst[2] = {0, 0};  // float32, bf16
  for (const CpuIsa isa : rwkv7_ops::kEveryCpuIsa) {
    if (!rwkv7_ops::cpu_isa_available(isa)) continue;
    const rwkv7_ops::ScopedCpuIsa use(isa);
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      // float32: the longest float sum here has 257 terms, each rounding by at most 2^-24: 1.5e-5,
      // so 2e-5. bf16: the one rounding of each output to 8 significant bits (at most 2^-8 of the
      // value), plus float32's 2e-5 (docs/testing.md).
      const double float32_bound = 2e-5;
      const double bound = dtype == at::kFloat ? float32_bound : std::ldexp(1.0, -8) + float32_bound;
      for (const Case& c : cases()) {
        const std::vector<at::Tensor> want = forward_and_backward(rounded(c, dtype), at::kDouble);
        std::vector<at::Tensor> one_thread;
        for (const int threads : {1, 3}) {
          at::set_num_threads(threads);
          const std::vector<at::Tensor> got = forward_and_backward(c, dtype);
          ASSERT_EQ(got.size(), want.size()) << c.op;
          for (size_t i = 0; i < want.size(); ++i) {
            EXPECT_EQ(got[i].scalar_type(), c.op == "cross_entropy_l2wrap" && i == 0 ? at::kFloat : dtype)
                << c.op << " result " << i;
            EXPECT_EQ(got[i].sizes(), want[i].sizes()) << c.op << " result " << i;
            const double e = relative_error(got[i], want[i]);
            worst[dtype == at::kBFloat16] = std::max(worst[dtype == at::kBFloat16], e);
            EXPECT_LE(e, bound) << rwkv7_ops::cpu_isa_name(isa) << " " << c10::toString(dtype) << " " << c.op
                                << " result " << i << " threads " << threads;
            if (threads == 1) one_thread.push_back(got[i]);
            else EXPECT_TRUE(at::equal(got[i], one_thread[i])) << c.op << " result " << i << ": 3 threads differ";
          }
          ++runs;
        }
      }
    }
  }
  at::set_num_threads(1);
  std::printf("[ fused cpu ] %d runs, worst relative error float32 %.3g, bf16 %.3g\n", runs, worst[0], worst[1]);
  EXPECT_GE(runs, 2 * 7 * 2);  // at least the baseline set, both dtypes, every case, both thread counts
}

TEST(FusedCpu, ReluSquareKeepsNaN) {
  const at::Tensor x = at::tensor({-1.0f, NAN, 2.0f});
  const at::Tensor out = call("relu_square", {x})[0];
  EXPECT_EQ(out[0].item<float>(), 0.0f);
  EXPECT_TRUE(std::isnan(out[1].item<float>()));
  EXPECT_EQ(out[2].item<float>(), 4.0f);
}

TEST(FusedCpu, CrossEntropyRefusesATargetOutsideTheVocabulary) {
  const at::Tensor logits = at::zeros({3, 10}), targets = at::tensor({1, 10, 2}, at::kLong);
  try {
    call("cross_entropy_l2wrap", {logits, targets});
    FAIL() << "a target of 10 with V = 10 was accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find("targets[1] = 10 is not a class of V = 10"),
              std::string::npos)
        << e.what_without_backtrace();
  }
}

}  // namespace
}  // namespace rwkv7
