// The argument checks every device's kk_pre runs first.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace rwkv7_ops {

inline void check_kk_pre(const char* op, const at::Tensor& k, const at::Tensor& a_in, const at::Tensor& a0,
                         const at::Tensor& k_k, const at::Tensor& k_a, int64_t H) {
  TORCH_CHECK(k.dim() == 3, op, ": argument 'k' must be [B, T, C], got ", k.sizes());
  const int64_t C = k.size(2);
  TORCH_CHECK(C >= 1, op, ": argument 'k' has no channels (C = 0)");
  TORCH_CHECK(H >= 1 && C % H == 0, op, ": C = ", C, " is not a multiple of H = ", H);
  TORCH_CHECK(a_in.sizes() == k.sizes(), op, ": argument 'a_in' must be shaped like 'k' ", k.sizes(), ", got ",
              a_in.sizes());
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"a0", a0}, {"k_k", k_k}, {"k_a", k_a}})
    TORCH_CHECK(t.dim() == 1 && t.size(0) == C, op, ": argument '", name, "' must be [C] with C = ", C, ", got ",
                t.sizes());
  for (const at::Tensor* t : {&a_in, &a0, &k_k, &k_a})
    TORCH_CHECK(t->scalar_type() == k.scalar_type() && t->device() == k.device(), op,
                ": every argument must have the dtype and device of 'k' (", k.scalar_type(), " on ", k.device(), ")");
}

// The backward's three output gradients, each shaped like 'k'.
inline void check_kk_pre_output_grads(const char* op, const at::Tensor& k, const at::Tensor& dk_out,
                                      const at::Tensor& dneg_kk, const at::Tensor& dkk_a) {
  for (const at::Tensor* g : {&dk_out, &dneg_kk, &dkk_a})
    TORCH_CHECK(g->sizes() == k.sizes(), op, ": the output gradients must be shaped like 'k'");
}

}  // namespace rwkv7_ops
