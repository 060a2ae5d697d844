#include "rwkv7/model/time_mix.h"

#include <ATen/ATen.h>

#include "rwkv7/model/fused_ops.h"
#include "rwkv7/model/token_shift.h"
#include "rwkv7/model/wkv7.h"

namespace rwkv7 {

TimeMixImpl::TimeMixImpl(const ModelShape& s, int64_t layer, const at::TensorOptions& o)
    : layer_id(layer),
      n_head(s.n_head()),
      head_size(s.head_size),
      has_value_residual(layer > 0 || s.layer0_value_residual) {
  const int64_t C = s.n_embd;
  auto vec = [&](const char* name) { return register_parameter(name, at::zeros({1, 1, C}, o)); };
  auto mat = [&](const char* name, int64_t rows, int64_t cols) {
    return register_parameter(name, at::zeros({rows, cols}, o));
  };
  // Registration order is the seed's state_dict order.
  x_r = vec("x_r"); x_w = vec("x_w"); x_k = vec("x_k");
  x_v = vec("x_v"); x_a = vec("x_a"); x_g = vec("x_g");
  w1 = mat("w1", C, s.d_decay); w2 = mat("w2", s.d_decay, C); w0 = vec("w0");
  a1 = mat("a1", C, s.d_aaa); a2 = mat("a2", s.d_aaa, C); a0 = vec("a0");
  if (has_value_residual) {
    v1 = mat("v1", C, s.d_mv); v2 = mat("v2", s.d_mv, C); v0 = vec("v0");
  }
  g1 = mat("g1", C, s.d_gate); g2 = mat("g2", s.d_gate, C);
  k_k = vec("k_k"); k_a = vec("k_a");
  r_k = register_parameter("r_k", at::zeros({n_head, head_size}, o));
  auto linear = [&](const char* name) {
    return register_module(name, Linear(C, C, o));
  };
  receptance = linear("receptance");
  key = linear("key");
  value = linear("value");
  output = linear("output");
  ln_x = register_module("ln_x", GroupNorm(n_head, C, 64e-5, o));
}

void TimeMixImpl::add_time_state() {
  time_state = register_parameter("time_state", at::zeros({n_head, head_size, head_size}, r_k.options()));
}

std::pair<at::Tensor, at::Tensor> TimeMixImpl::forward(const at::Tensor& x,
                                                       const at::Tensor& v_first_in,
                                                       LayerState* state, const at::Tensor& resets) {
  if (fused_ops && state == nullptr && !resets.defined()) return forward_fused(x, v_first_in);
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = n_head, N = head_size;
  const at::Tensor xx = token_shift(x, state ? &state->att_x_prev : nullptr, resets) - x;
  const at::Tensor xr = x + xx * x_r, xw = x + xx * x_w, xk = x + xx * x_k;
  const at::Tensor xv = x + xx * x_v, xa = x + xx * x_a, xg = x + xx * x_g;

  const at::Tensor r = receptance(xr);
  // log-log decay, soft-clamped to (-inf, -0.5): the decay exp(-exp(w)) stays in (0, 0.545]
  const at::Tensor w = -at::softplus(-(w0 + at::matmul(at::tanh(at::matmul(xw, w1)), w2))) - 0.5;
  at::Tensor k = key(xk);
  at::Tensor v = value(xv);
  at::Tensor v_first = v_first_in;
  if (layer_id == 0) {
    v_first = v;
  } else {  // value residual: blend towards layer 0's value
    v = v + (v_first - v) * at::sigmoid(v0 + at::matmul(at::matmul(xv, v1), v2));
  }
  const at::Tensor a = at::sigmoid(a0 + at::matmul(at::matmul(xa, a1), a2));  // in-context rate
  const at::Tensor g = at::matmul(at::sigmoid(at::matmul(xg, g1)), g2);

  // kk = normalize(k * k_k) per head (L2 over N, eps 1e-12 as F.normalize)
  at::Tensor kk = (k * k_k).view({B, T, H, N});
  kk = kk / kk.norm(2, -1, true).clamp_min(1e-12);
  k = k * (1 + (a - 1) * k_a);

  auto heads = [&](const at::Tensor& t) { return t.reshape({B, T, H, N}); };
  const at::Tensor a4 = heads(a);
  // A chunk of a long sample (training): the op, differentiable in the state, where the device's
  // kernel takes the shape (CUDA: T % 16 == 0, N 64 or 128); otherwise, and in inference (eval
  // mode), the per-step scan, which takes any T.
  const bool kernel_takes_it = !x.is_cuda() || (T % 16 == 0 && (N == 64 || N == 128));
  at::Tensor y;
  if (resets.defined()) {  // packed documents: each restarts from the tuned state, or 0
    const at::Tensor start = time_state.defined() ? time_state : at::zeros({H, N, N}, r.options().dtype(at::kFloat));
    if (state != nullptr && !(is_training() && kernel_takes_it)) {
      y = wkv7_scan(heads(r), heads(w), heads(k), heads(v), -kk, kk * a4, state->wkv, resets, start);
    } else {
      at::Tensor sT;
      std::tie(y, sT) = wkv7_reset(heads(r), heads(w), heads(k), heads(v), -kk, kk * a4,
                                   state != nullptr ? state->wkv : start, resets, start);
      if (state != nullptr) state->wkv = sT;
    }
  } else if (state != nullptr && is_training() && kernel_takes_it) {
    std::tie(y, state->wkv) = wkv7_state_passing(heads(r), heads(w), heads(k), heads(v), -kk, kk * a4, state->wkv);
  } else {
    y = state                  ? wkv7_scan(heads(r), heads(w), heads(k), heads(v), -kk, kk * a4, state->wkv)
        : time_state.defined() ? wkv7_state(heads(r), heads(w), heads(k), heads(v), -kk, kk * a4, time_state)
                               : wkv7(heads(r), heads(w), heads(k), heads(v), -kk, kk * a4);
  }

  y = ln_x(y.reshape({B * T, C})).view({B, T, C});
  // bonus: y += (sum_n r * k * r_k) v, per head
  const at::Tensor rk = (heads(r) * heads(k) * r_k).sum(-1, true);
  y = y + (rk * heads(v)).view({B, T, C});
  return {output(y * g), v_first};
}

// The same computation through the fused ops (fused_ops: 1): the matmuls stay ATen's (cuBLAS);
// each stretch of elementwise work between them is one op.
std::pair<at::Tensor, at::Tensor> TimeMixImpl::forward_fused(const at::Tensor& x, const at::Tensor& v_first_in) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), H = n_head, N = head_size;
  const at::Tensor lerps = fused::token_shift_mix(x, at::cat({x_r, x_w, x_k, x_v, x_a, x_g}).view({6, C}));
  // (unbind, not lerps[j]: its backward is one stack, where six selects would each scatter into a
  // zeroed [6, B, T, C] and add them up)
  const std::vector<at::Tensor> parts = lerps.unbind(0);
  const at::Tensor &xr = parts[0], &xw = parts[1], &xk = parts[2], &xv = parts[3], &xa = parts[4], &xg = parts[5];

  const at::Tensor r = receptance(xr);
  const at::Tensor w_raw = w0 + at::matmul(at::tanh(at::matmul(xw, w1)), w2);  // soft clamp in the scan
  at::Tensor v = value(xv);
  at::Tensor v_first = v_first_in;
  if (layer_id == 0)
    v_first = v;
  else
    v = fused::vres_gate(v, v_first, at::matmul(at::matmul(xv, v1), v2), v0.view({C}));
  const at::Tensor g = at::matmul(at::sigmoid(at::matmul(xg, g1)), g2);
  auto [k, neg_kk, kk_a] =
      fused::kk_pre(key(xk), at::matmul(at::matmul(xa, a1), a2), a0.view({C}), k_k.view({C}), k_a.view({C}), H);

  auto heads = [&](const at::Tensor& t) { return t.reshape({B, T, H, N}); };
  // (a tuned state takes the scan with an initial state, the soft clamp as plain ATen ops)
  const at::Tensor y =
      time_state.defined()
          ? wkv7_state(heads(r), heads(-at::softplus(-w_raw) - 0.5), heads(k), heads(v), heads(neg_kk), heads(kk_a),
                       time_state)
          : fused::wkv7_raw_decay(heads(r), heads(w_raw), heads(k), heads(v), heads(neg_kk), heads(kk_a));
  return {output(fused::lnx_rkvres_xg(y.view({B, T, C}), r, k, v, r_k, g, ln_x->weight, ln_x->bias, H, ln_x->eps)),
          v_first};
}

}  // namespace rwkv7
