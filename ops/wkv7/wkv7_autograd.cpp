// Autograd for rwkv7::wkv7, wkv7_state, wkv7_state_passing, wkv7_reset and wkv7_raw_decay, registered in C++ so that C++ and Python callers alike get
// gradients: forward runs wkv7_forward below the autograd layer and keeps what the
// device's backward needs; backward runs wkv7_backward on the same device.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/csrc/autograd/custom_function.h>
#include <ATen/TensorOperators.h>
#include <ATen/ops/softplus.h>
#include <torch/library.h>

#include <string>

namespace rwkv7_ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using ForwardOp = c10::TypedOperatorHandle<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const at::Tensor&)>;
using BackwardOp = c10::TypedOperatorHandle<
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
        const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
        const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&)>;
using PlainOp = c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                    const at::Tensor&, const at::Tensor&, const at::Tensor&)>;

// The three ops one differentiable scan is made of: wkv7 (decay from w) or wkv7_raw_decay.
struct ScanOps {
  PlainOp plain;
  ForwardOp forward;
  BackwardOp backward;
};

ScanOps find_scan_ops(const char* name) {
  auto& d = c10::Dispatcher::singleton();
  const std::string n = std::string("rwkv7::") + name;
  return {d.findSchemaOrThrow(n.c_str(), "").typed<at::Tensor(const at::Tensor&, const at::Tensor&,
                                                             const at::Tensor&, const at::Tensor&,
                                                             const at::Tensor&, const at::Tensor&)>(),
          d.findSchemaOrThrow((n + "_forward").c_str(), "")
              .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                  const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                  const at::Tensor&, const at::Tensor&)>(),
          d.findSchemaOrThrow((n + "_backward").c_str(), "")
              .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
                  const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                  const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                  const at::Tensor&)>()};
}

const ScanOps& wkv7_ops() {
  static const ScanOps ops = find_scan_ops("wkv7");
  return ops;
}

const ScanOps& wkv7_raw_decay_ops() {
  static const ScanOps ops = find_scan_ops("wkv7_raw_decay");
  return ops;
}

class ScanFunction : public torch::autograd::Function<ScanFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& r, const at::Tensor& w,
                            const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
                            const at::Tensor& b, const ScanOps* ops) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, saved_state, saved_sa] = ops->forward.call(r, w, k, v, a, b);
    ctx->save_for_backward({r, w, k, v, a, b, saved_state, saved_sa});
    ctx->saved_data["raw_decay"] = ops == &wkv7_raw_decay_ops();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto s = ctx->get_saved_variables();
    const ScanOps& ops = ctx->saved_data["raw_decay"].toBool() ? wkv7_raw_decay_ops() : wkv7_ops();
    // The kernels read dy as a contiguous [B, T, H, N] tensor of the inputs' dtype.
    at::Tensor dy = grad_outputs[0].to(s[0].scalar_type()).contiguous();
    auto [dr, dw, dk, dv, da, db] = ops.backward.call(s[0], s[1], s[2], s[3], s[4], s[5], dy, s[6], s[7]);
    return {dr, dw, dk, dv, da, db, at::Tensor()};
  }
};

// wkv7_state: the same with the initial state s0 as a seventh differentiable input.
using StateTensors = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using StateGrads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using T = const at::Tensor&;

struct StateScanOps {
  c10::TypedOperatorHandle<at::Tensor(T, T, T, T, T, T, T)> plain;
  c10::TypedOperatorHandle<StateTensors(T, T, T, T, T, T, T)> forward;
  c10::TypedOperatorHandle<StateGrads(T, T, T, T, T, T, T, T, T, T)> backward;
};

const StateScanOps& wkv7_state_ops() {
  static const StateScanOps ops = [] {
    auto& d = c10::Dispatcher::singleton();
    return StateScanOps{
        d.findSchemaOrThrow("rwkv7::wkv7_state", "").typed<at::Tensor(T, T, T, T, T, T, T)>(),
        d.findSchemaOrThrow("rwkv7::wkv7_state_forward", "").typed<StateTensors(T, T, T, T, T, T, T)>(),
        d.findSchemaOrThrow("rwkv7::wkv7_state_backward", "").typed<StateGrads(T, T, T, T, T, T, T, T, T, T)>()};
  }();
  return ops;
}

class StateScanFunction : public torch::autograd::Function<StateScanFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, T r, T w, T k, T v, T a, T b, T s0) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, saved_state, saved_sa] = wkv7_state_ops().forward.call(r, w, k, v, a, b, s0);
    ctx->save_for_backward({r, w, k, v, a, b, s0, saved_state, saved_sa});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto s = ctx->get_saved_variables();
    at::Tensor dy = grad_outputs[0].to(s[0].scalar_type()).contiguous();
    auto [dr, dw, dk, dv, da, db, ds0] =
        wkv7_state_ops().backward.call(s[0], s[1], s[2], s[3], s[4], s[5], s[6], dy, s[7], s[8]);
    return {dr, dw, dk, dv, da, db, ds0};
  }
};

// wkv7_state_passing: two outputs (y, sT), and the backward takes both gradients. An output whose
// gradient nobody asked for arrives as zeros (the Function materialises them), so dsT = 0 is
// the plain wkv7_state backward.
using PassingTensors = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

struct StatePassingOps {
  c10::TypedOperatorHandle<std::tuple<at::Tensor, at::Tensor>(T, T, T, T, T, T, T)> plain;
  c10::TypedOperatorHandle<PassingTensors(T, T, T, T, T, T, T)> forward;
  c10::TypedOperatorHandle<StateGrads(T, T, T, T, T, T, T, T, T, T, T)> backward;
};

const StatePassingOps& wkv7_state_passing_ops() {
  static const StatePassingOps ops = [] {
    auto& d = c10::Dispatcher::singleton();
    return StatePassingOps{
        d.findSchemaOrThrow("rwkv7::wkv7_state_passing", "").typed<std::tuple<at::Tensor, at::Tensor>(T, T, T, T, T, T, T)>(),
        d.findSchemaOrThrow("rwkv7::wkv7_state_passing_forward", "").typed<PassingTensors(T, T, T, T, T, T, T)>(),
        d.findSchemaOrThrow("rwkv7::wkv7_state_passing_backward", "")
            .typed<StateGrads(T, T, T, T, T, T, T, T, T, T, T)>()};
  }();
  return ops;
}

class StatePassingFunction : public torch::autograd::Function<StatePassingFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, T r, T w, T k, T v, T a, T b, T s0) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, sT, saved_state, saved_sa] = wkv7_state_passing_ops().forward.call(r, w, k, v, a, b, s0);
    ctx->save_for_backward({r, w, k, v, a, b, s0, saved_state, saved_sa});
    return {y, sT};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto s = ctx->get_saved_variables();
    at::Tensor dy = grad_outputs[0].to(s[0].scalar_type()).contiguous();
    auto [dr, dw, dk, dv, da, db, ds0] =
        wkv7_state_passing_ops().backward.call(s[0], s[1], s[2], s[3], s[4], s[5], s[6], dy, grad_outputs[1], s[7], s[8]);
    return {dr, dw, dk, dv, da, db, ds0};
  }
};

// wkv7_reset: wkv7_state_passing with the restart mask (no gradient) and the restart state
// (differentiable: the sum of dL/dR over every restart).
using ResetGrads =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

struct ResetOps {
  c10::TypedOperatorHandle<std::tuple<at::Tensor, at::Tensor>(T, T, T, T, T, T, T, T, T)> plain;
  c10::TypedOperatorHandle<PassingTensors(T, T, T, T, T, T, T, T, T)> forward;
  c10::TypedOperatorHandle<ResetGrads(T, T, T, T, T, T, T, T, T, T, T, T, T)> backward;
};

const ResetOps& wkv7_reset_ops() {
  static const ResetOps ops = [] {
    auto& d = c10::Dispatcher::singleton();
    return ResetOps{
        d.findSchemaOrThrow("rwkv7::wkv7_reset", "").typed<std::tuple<at::Tensor, at::Tensor>(T, T, T, T, T, T, T, T, T)>(),
        d.findSchemaOrThrow("rwkv7::wkv7_reset_forward", "").typed<PassingTensors(T, T, T, T, T, T, T, T, T)>(),
        d.findSchemaOrThrow("rwkv7::wkv7_reset_backward", "")
            .typed<ResetGrads(T, T, T, T, T, T, T, T, T, T, T, T, T)>()};
  }();
  return ops;
}

class ResetFunction : public torch::autograd::Function<ResetFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, T r, T w, T k, T v, T a, T b, T s0, T reset, T s_reset) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, sT, saved_state, saved_sa] = wkv7_reset_ops().forward.call(r, w, k, v, a, b, s0, reset, s_reset);
    ctx->save_for_backward({r, w, k, v, a, b, s0, reset, s_reset, saved_state, saved_sa});
    return {y, sT};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto s = ctx->get_saved_variables();
    at::Tensor dy = grad_outputs[0].to(s[0].scalar_type()).contiguous();
    auto [dr, dw, dk, dv, da, db, ds0, ds_reset] = wkv7_reset_ops().backward.call(
        s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], dy, grad_outputs[1], s[9], s[10]);
    return {dr, dw, dk, dv, da, db, ds0, at::Tensor(), ds_reset};
  }
};

bool any_requires_grad(std::initializer_list<const at::Tensor*> ts) {
  if (!at::GradMode::is_enabled()) return false;
  for (const at::Tensor* t : ts)
    if (t->requires_grad()) return true;
  return false;
}

// Without gradients to compute, the device's plain kernel runs: it keeps no saved state.
at::Tensor scan(const ScanOps& ops, const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  if (!any_requires_grad({&r, &w, &k, &v, &a, &b})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return ops.plain.call(r, w, k, v, a, b);
  }
  return ScanFunction::apply(r, w, k, v, a, b, &ops);
}

at::Tensor wkv7_autograd(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                         const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  return scan(wkv7_ops(), r, w, k, v, a, b);
}

at::Tensor wkv7_state_autograd(T r, T w, T k, T v, T a, T b, T s0) {
  if (!any_requires_grad({&r, &w, &k, &v, &a, &b, &s0})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return wkv7_state_ops().plain.call(r, w, k, v, a, b, s0);
  }
  return StateScanFunction::apply(r, w, k, v, a, b, s0);
}

std::tuple<at::Tensor, at::Tensor> wkv7_state_passing_autograd(T r, T w, T k, T v, T a, T b, T s0) {
  if (!any_requires_grad({&r, &w, &k, &v, &a, &b, &s0})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return wkv7_state_passing_ops().plain.call(r, w, k, v, a, b, s0);
  }
  auto out = StatePassingFunction::apply(r, w, k, v, a, b, s0);
  return {out[0], out[1]};
}

std::tuple<at::Tensor, at::Tensor> wkv7_reset_autograd(T r, T w, T k, T v, T a, T b, T s0, T reset, T s_reset) {
  if (!any_requires_grad({&r, &w, &k, &v, &a, &b, &s0, &s_reset})) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return wkv7_reset_ops().plain.call(r, w, k, v, a, b, s0, reset, s_reset);
  }
  auto out = ResetFunction::apply(r, w, k, v, a, b, s0, reset, s_reset);
  return {out[0], out[1]};
}

// The raw decay has its own kernels on CUDA; elsewhere it is the composite, differentiable
// through its parts: w = -softplus(-x) - 0.5, then wkv7.
at::Tensor wkv7_raw_decay_autograd(const at::Tensor& r, const at::Tensor& x, const at::Tensor& k,
                                   const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  if (!r.is_cuda()) return wkv7_autograd(r, -at::softplus(-x) - 0.5, k, v, a, b);
  return scan(wkv7_raw_decay_ops(), r, x, k, v, a, b);
}

}  // namespace

// The _forward / _backward ops are the pieces the Function is made of, not differentiable
// themselves: a gradient through them is an error saying so, not a silent zero.
TORCH_LIBRARY_IMPL(rwkv7, Autograd, m) {
  m.impl("wkv7", &wkv7_autograd);
  m.impl("wkv7_forward", torch::autograd::autogradNotImplementedFallback());
  m.impl("wkv7_backward", torch::autograd::autogradNotImplementedFallback());
  m.impl("wkv7_state", &wkv7_state_autograd);
  m.impl("wkv7_state_forward", torch::autograd::autogradNotImplementedFallback());
  m.impl("wkv7_state_backward", torch::autograd::autogradNotImplementedFallback());
  m.impl("wkv7_state_passing", &wkv7_state_passing_autograd);
  m.impl("wkv7_state_passing_forward", torch::autograd::autogradNotImplementedFallback());
  m.impl("wkv7_state_passing_backward", torch::autograd::autogradNotImplementedFallback());
  m.impl("wkv7_reset", &wkv7_reset_autograd);
  m.impl("wkv7_reset_forward", torch::autograd::autogradNotImplementedFallback());
  m.impl("wkv7_reset_backward", torch::autograd::autogradNotImplementedFallback());
  m.impl("wkv7_raw_decay", &wkv7_raw_decay_autograd);
  m.impl("wkv7_raw_decay_forward", torch::autograd::autogradNotImplementedFallback());
  m.impl("wkv7_raw_decay_backward", torch::autograd::autogradNotImplementedFallback());
}

}  // namespace rwkv7_ops
