// The argument checks every device's lnx_rkvres_xg runs first: one message per mistake, naming
// the op and the argument.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <utility>

namespace rwkv7_ops {

inline void check_lnx_rkvres_xg(const char* op, const at::Tensor& y, const at::Tensor& r, const at::Tensor& k,
                                const at::Tensor& v, const at::Tensor& r_k, const at::Tensor& g,
                                const at::Tensor& ln_w, const at::Tensor& ln_b, int64_t H, double eps) {
  TORCH_CHECK(y.dim() == 3, op, ": argument 'y' must be [B, T, C], got ", y.sizes());
  const int64_t C = y.size(2);
  TORCH_CHECK(C >= 1, op, ": argument 'y' has no channels (C = 0)");
  TORCH_CHECK(H >= 1 && C % H == 0, op, ": argument 'H' = ", H, " must divide C = ", C);
  TORCH_CHECK(eps > 0, op, ": argument 'eps' must be positive, got ", eps);
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"r", r}, {"k", k}, {"v", v}, {"g", g}})
    TORCH_CHECK(t.sizes() == y.sizes(), op, ": argument '", name, "' must be shaped like 'y' ", y.sizes(), ", got ",
                t.sizes());
  TORCH_CHECK(r_k.dim() == 2 && r_k.size(0) == H && r_k.size(1) == C / H, op, ": argument 'r_k' must be [H, N] = [",
              H, ", ", C / H, "], got ", r_k.sizes());
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"ln_w", ln_w}, {"ln_b", ln_b}})
    TORCH_CHECK(t.dim() == 1 && t.size(0) == C, op, ": argument '", name, "' must be [C] with C = ", C, ", got ",
                t.sizes());
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"r", r}, {"k", k}, {"v", v}, {"r_k", r_k},
                                {"g", g}, {"ln_w", ln_w}, {"ln_b", ln_b}})
    TORCH_CHECK(t.scalar_type() == y.scalar_type() && t.device() == y.device(), op, ": argument '", name,
                "' must have the dtype and device of 'y' (", y.scalar_type(), " on ", y.device(), "), got ",
                t.scalar_type(), " on ", t.device());
}

// The backward's output gradient: one per element of the output, shaped like 'y'.
inline void check_lnx_rkvres_xg_dout(const char* op, const at::Tensor& y, const at::Tensor& dout) {
  TORCH_CHECK(dout.sizes() == y.sizes(), op, ": argument 'dout' must be shaped like 'y' ", y.sizes(), ", got ",
              dout.sizes());
}

}  // namespace rwkv7_ops
