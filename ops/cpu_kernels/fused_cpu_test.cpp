// The fused ops' one-pass CPU kernels (float32 and bfloat16, every instruction set this processor
// runs, one and three threads) against the same ops in float64, which run the composite reference
// of each ops/<op>/<op>_cpu.cpp, on the same (rounded) inputs: forward and backward, at odd
// shapes (rows not a multiple of the block, T 7 with blocks across sequences, C 40, N 8, V 257)
// and a head of k that is 0 (kk_pre's clamped norm).
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
  at::Tensor k_zero_head = randn({B, T, C});
  k_zero_head.slice(1, 0, 2).slice(2, 0, C / H).zero_();  // one head of k 0 in 10 rows: the norm's clamp
  all.push_back({"kk_pre",
                 {k_zero_head, randn({B, T, C}), randn({C}), rand({C}) + 0.5, rand({C}), c10::IValue(H)},
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
  EXPECT_GE(runs, 2 * 8 * 2);  // at least the baseline set, both dtypes, every case, both thread counts
}

TEST(FusedCpu, ReluSquareKeepsNaN) {
  const at::Tensor x = at::tensor({-1.0f, NAN, 2.0f});
  const at::Tensor out = call("relu_square", {x})[0];
  EXPECT_EQ(out[0].item<float>(), 0.0f);
  EXPECT_TRUE(std::isnan(out[1].item<float>()));
  EXPECT_EQ(out[2].item<float>(), 4.0f);
}

TEST(FusedCpu, NoRowsGiveEmptyOutputsAndZeroParameterGradients) {
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const at::Tensor x = at::zeros({2, 0, 16}, dtype), mix = at::ones({6, 16}, dtype);
    const std::vector<at::Tensor> back = call("token_shift_mix_backward", {x, mix, at::zeros({6, 2, 0, 16}, dtype)});
    EXPECT_EQ(call("token_shift_mix", {x, mix})[0].sizes(), at::IntArrayRef({6, 2, 0, 16}));
    EXPECT_EQ(back[0].sizes(), x.sizes());
    EXPECT_TRUE(at::equal(back[1], at::zeros({6, 16}, dtype)));
    const std::vector<at::Tensor> kk = call("kk_pre_backward", {x, x, mix[0], mix[0], mix[0], c10::IValue(int64_t{2}),
                                                                 x, x, x});
    EXPECT_TRUE(at::equal(kk[2], at::zeros({16}, dtype)));
  }
}

// the message of the error `name(args)` raises, or "" when it raises none
std::string refusal(const std::string& name, const std::vector<c10::IValue>& args) {
  try {
    call(name, args);
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

// What a hostile-input attack found (2026-12-06), each fixed.
TEST(FusedCpu, AttackFindings) {
  // a NaN in a head makes the whole head's kk NaN (the norm's clamp kept a NaN norm as 1e-12)
  const at::Tensor k = at::tensor({NAN, 1.0f, 2.0f, 3.0f}).view({1, 1, 4});
  const at::Tensor one = at::ones({4}), z = at::zeros({1, 1, 4});
  EXPECT_TRUE(call("kk_pre", {k, z, one, one, one, c10::IValue(int64_t{1})})[1].isnan().all().item<bool>());
  // a finite mean loss beyond float's range is inf (it was an unnamed conversion error)
  const at::Tensor huge = at::tensor({3e38f, -3e38f, 0.0f}).view({1, 3});
  EXPECT_TRUE(std::isinf(call("cross_entropy_l2wrap", {huge, at::tensor({int64_t{1}})})[0].item<float>()));
  // no channels: refused (kk_pre wrote a head's norm into scratch of 0 floats)
  const at::Tensor empty = at::zeros({1, 1, 0}), none = at::zeros({0});
  EXPECT_NE(refusal("kk_pre", {empty, empty, none, none, none, c10::IValue(int64_t{1})}).find("no channels (C = 0)"),
            std::string::npos);
  // an eps that is 0 in float32 is refused (the output was NaN)
  const at::Tensor y = at::ones({1, 1, 4}), rk = at::ones({1, 4});
  EXPECT_NE(refusal("lnx_rkvres_xg", {y, y, y, y, rk, y, one, one, c10::IValue(int64_t{1}), c10::IValue(1e-50)})
                .find("'eps' = 1e-50 is 0 in float32"),
            std::string::npos);
  // float64 (the composite) refuses -100 as the fast path does, rather than ignoring it forward only
  const at::Tensor logits = at::zeros({2, 2}, at::kDouble), targets = at::tensor({int64_t{-100}, int64_t{0}});
  EXPECT_NE(refusal("cross_entropy_l2wrap", {logits, targets}).find("targets[0] = -100 is not a class of V = 2"),
            std::string::npos);
  // float64 with T = 0: empty outputs, as float32 gives (constant_pad_nd refused it)
  const at::Tensor x0 = at::zeros({2, 0, 8}, at::kDouble), mix = at::ones({2, 8}, at::kDouble);
  EXPECT_EQ(call("token_shift_mix", {x0, mix})[0].sizes(), at::IntArrayRef({2, 2, 0, 8}));
  EXPECT_TRUE(at::equal(call("token_shift_mix_backward", {x0, mix, at::zeros({2, 2, 0, 8}, at::kDouble)})[1],
                        at::zeros({2, 8}, at::kDouble)));
}

TEST(FusedCpu, StridedInputsAndOtherGradientDtypesGiveTheSameResults) {
  const at::Tensor x = at::randn({2, 16, 9}).transpose(1, 2), mix = at::rand({6, 16});  // [2, 9, 16], strided
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_TRUE(at::equal(call("token_shift_mix", {x, mix})[0], call("token_shift_mix", {x.contiguous(), mix})[0]));
  const at::Tensor v = at::randn({2, 9, 16}, at::kBFloat16), v0 = at::randn({16}, at::kBFloat16);
  const at::Tensor dout = at::randn({2, 9, 16});  // float32 for bf16 inputs: taken as bf16
  const std::vector<at::Tensor> got = call("vres_gate_backward", {v, v, v, v0, dout});
  const std::vector<at::Tensor> want = call("vres_gate_backward", {v, v, v, v0, dout.to(at::kBFloat16)});
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(at::equal(got[i], want[i])) << "result " << i;
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
