#include "rwkv7/model/fused_ops.h"

#include <ATen/core/dispatch/Dispatcher.h>

namespace rwkv7::fused {
namespace {

template <typename Signature>
c10::TypedOperatorHandle<Signature> find(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

using T = const at::Tensor&;

}  // namespace

at::Tensor token_shift_mix(T x, T mix) {
  static auto op = find<at::Tensor(T, T)>("rwkv7::token_shift_mix");
  return op.call(x, mix);
}

at::Tensor wkv7_raw_decay(T r, T x, T k, T v, T a, T b) {
  static auto op = find<at::Tensor(T, T, T, T, T, T)>("rwkv7::wkv7_raw_decay");
  return op.call(r, x, k, v, a, b);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> kk_pre(T k, T a_in, T a0, T k_k, T k_a, int64_t n_head) {
  static auto op = find<std::tuple<at::Tensor, at::Tensor, at::Tensor>(T, T, T, T, T, int64_t)>("rwkv7::kk_pre");
  return op.call(k, a_in, a0, k_k, k_a, n_head);
}

at::Tensor vres_gate(T v, T v_first, T v_in, T v0) {
  static auto op = find<at::Tensor(T, T, T, T)>("rwkv7::vres_gate");
  return op.call(v, v_first, v_in, v0);
}

at::Tensor lnx_rkvres_xg(T y, T r, T k, T v, T r_k, T g, T ln_w, T ln_b, int64_t n_head, double eps) {
  static auto op = find<at::Tensor(T, T, T, T, T, T, T, T, int64_t, double)>("rwkv7::lnx_rkvres_xg");
  return op.call(y, r, k, v, r_k, g, ln_w, ln_b, n_head, eps);
}

at::Tensor relu_square(T x) {
  static auto op = find<at::Tensor(T)>("rwkv7::relu_square");
  return op.call(x);
}

at::Tensor cross_entropy_l2wrap(T logits, T targets) {
  static auto op = find<at::Tensor(T, T)>("rwkv7::cross_entropy_l2wrap");
  return op.call(logits, targets);
}

at::Tensor cross_entropy_l2wrap_backward(T logits, T targets, T dloss) {
  static auto op = find<at::Tensor(T, T, T)>("rwkv7::cross_entropy_l2wrap_backward");
  return op.call(logits, targets, dloss);
}

}  // namespace rwkv7::fused
