#include "rwkv7/model/wkv7.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <vector>

namespace rwkv7 {

at::Tensor wkv7(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("rwkv7::wkv7", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  return op.call(r, w, k, v, a, b);
}

at::Tensor wkv7_state(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                      const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0) {
  using T = const at::Tensor&;
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("rwkv7::wkv7_state", "")
                       .typed<at::Tensor(T, T, T, T, T, T, T)>();
  return op.call(r, w, k, v, a, b, s0);
}

std::tuple<at::Tensor, at::Tensor> wkv7_state_passing(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                                                      const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                                      const at::Tensor& s0) {
  using T = const at::Tensor&;
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("rwkv7::wkv7_state_passing", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(T, T, T, T, T, T, T)>();
  return op.call(r, w, k, v, a, b, s0);
}

std::tuple<at::Tensor, at::Tensor> wkv7_reset(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                                              const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                              const at::Tensor& s0, const at::Tensor& reset,
                                              const at::Tensor& s_reset) {
  using T = const at::Tensor&;
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("rwkv7::wkv7_reset", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(T, T, T, T, T, T, T, T, T)>();
  return op.call(r, w, k, v, a, b, s0, reset, s_reset);
}

at::Tensor wkv7_scan(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                     const at::Tensor& v, const at::Tensor& a, const at::Tensor& b, at::Tensor& S,
                     const at::Tensor& reset, const at::Tensor& s_reset) {
  auto f = [](const at::Tensor& x) { return x.to(at::kFloat); };
  const at::Tensor R = f(r), K = f(k), V = f(v), A = f(a), Bv = f(b);
  const at::Tensor decay = at::exp(-at::exp(f(w)));
  std::vector<at::Tensor> ys;
  for (int64_t t = 0; t < r.size(1); ++t) {
    if (reset.defined())  // restart the marked samples: S = R where reset[:, t]
      S = at::where(reset.select(1, t).view({-1, 1, 1, 1}), s_reset.to(at::kFloat).expand_as(S), S);
    // per batch and head: sa = S a_t ; S = S diag(d_t) + sa b_t^T + v_t k_t^T ; y_t = S r_t
    const at::Tensor sa = at::matmul(S, A.select(1, t).unsqueeze(-1));  // [B, H, N, 1]
    S = S * decay.select(1, t).unsqueeze(-2) + sa * Bv.select(1, t).unsqueeze(-2) +
        V.select(1, t).unsqueeze(-1) * K.select(1, t).unsqueeze(-2);
    ys.push_back(at::matmul(S, R.select(1, t).unsqueeze(-1)).squeeze(-1));  // [B, H, N]
  }
  return at::stack(ys, 1).to(r.scalar_type());
}

}  // namespace rwkv7
