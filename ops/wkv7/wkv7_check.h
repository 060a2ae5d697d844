// Argument checks shared by every device's WKV-7 kernels. Each message names the argument
// at fault, so a user who wires the op wrongly learns which input to look at.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <array>

namespace rwkv7_ops {

inline void check_wkv7_inputs(const char* op, const at::Tensor& r, const at::Tensor& w,
                              const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
                              const at::Tensor& b) {
  const std::array<const at::Tensor*, 6> xs{&r, &w, &k, &v, &a, &b};
  const std::array<const char*, 6> names{"r", "w", "k", "v", "a", "b"};
  TORCH_CHECK(r.defined(), op, ": argument 'r' is undefined");
  TORCH_CHECK(r.dim() == 4, op, ": argument 'r' must have shape [B, T, H, N], got rank ",
              r.dim());
  for (size_t i = 0; i < xs.size(); ++i) {
    const at::Tensor& x = *xs[i];
    TORCH_CHECK(x.defined(), op, ": argument '", names[i], "' is undefined");
    TORCH_CHECK(x.sizes() == r.sizes(), op, ": argument '", names[i], "' has shape ",
                x.sizes(), " but 'r' has shape ", r.sizes(), " (all six must be [B, T, H, N])");
    TORCH_CHECK(x.scalar_type() == r.scalar_type(), op, ": argument '", names[i],
                "' has dtype ", x.scalar_type(), " but 'r' has dtype ", r.scalar_type());
    TORCH_CHECK(x.device() == r.device(), op, ": argument '", names[i], "' is on ", x.device(),
                " but 'r' is on ", r.device());
  }
  TORCH_CHECK(r.size(0) >= 1 && r.size(1) >= 1 && r.size(2) >= 1 && r.size(3) >= 1, op,
              ": every dimension of [B, T, H, N] must be >= 1, got ", r.sizes());
}

inline void check_same_as_r(const char* op, const char* name, const at::Tensor& x,
                            const at::Tensor& r) {
  TORCH_CHECK(x.defined() && x.sizes() == r.sizes() && x.device() == r.device(), op,
              ": argument '", name, "' must match 'r' in shape and device, got ",
              x.defined() ? x.sizes() : at::IntArrayRef{});
}

}  // namespace rwkv7_ops
