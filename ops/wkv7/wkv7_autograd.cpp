// Autograd for rwkv7::wkv7, registered in C++ so that C++ and Python callers alike get
// gradients: forward runs wkv7_forward below the autograd layer and keeps what the
// device's backward needs; backward runs wkv7_backward on the same device.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

namespace rwkv7_ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::tuple<at::Tensor, at::Tensor, at::Tensor> call_forward(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& a, const at::Tensor& b) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("rwkv7::wkv7_forward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  return op.call(r, w, k, v, a, b);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> call_backward(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& a, const at::Tensor& b, const at::Tensor& dy, const at::Tensor& s,
    const at::Tensor& sa) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("rwkv7::wkv7_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                            at::Tensor>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                        const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                        const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  return op.call(r, w, k, v, a, b, dy, s, sa);
}

class Wkv7Function : public torch::autograd::Function<Wkv7Function> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& r, const at::Tensor& w,
                            const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
                            const at::Tensor& b) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [y, saved_state, saved_sa] = call_forward(r, w, k, v, a, b);
    ctx->save_for_backward({r, w, k, v, a, b, saved_state, saved_sa});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto s = ctx->get_saved_variables();
    // The kernels read dy as a contiguous [B, T, H, N] tensor of the inputs' dtype.
    at::Tensor dy = grad_outputs[0].to(s[0].scalar_type()).contiguous();
    auto [dr, dw, dk, dv, da, db] = call_backward(s[0], s[1], s[2], s[3], s[4], s[5], dy, s[6], s[7]);
    return {dr, dw, dk, dv, da, db};
  }
};

// Without gradients to compute, the device's plain wkv7 kernel runs: it keeps no saved state.
at::Tensor call_plain(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                      const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("rwkv7::wkv7", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  at::AutoDispatchBelowADInplaceOrView guard;
  return op.call(r, w, k, v, a, b);
}

at::Tensor wkv7_autograd(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                         const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  const bool needs_grad =
      at::GradMode::is_enabled() && (r.requires_grad() || w.requires_grad() || k.requires_grad() ||
                                     v.requires_grad() || a.requires_grad() || b.requires_grad());
  if (!needs_grad) return call_plain(r, w, k, v, a, b);
  return Wkv7Function::apply(r, w, k, v, a, b);
}

}  // namespace

// wkv7_forward / wkv7_backward are the pieces this Function is made of, not differentiable
// themselves: a gradient through them is an error saying so, not a silent zero.
TORCH_LIBRARY_IMPL(rwkv7, Autograd, m) {
  m.impl("wkv7", &wkv7_autograd);
  m.impl("wkv7_forward", torch::autograd::autogradNotImplementedFallback());
  m.impl("wkv7_backward", torch::autograd::autogradNotImplementedFallback());
}

}  // namespace rwkv7_ops
