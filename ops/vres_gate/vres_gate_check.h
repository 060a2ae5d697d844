// The argument checks every device's vres_gate runs first.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace rwkv7_ops {

inline void check_vres_gate(const char* op, const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in,
                            const at::Tensor& v0) {
  TORCH_CHECK(v.dim() == 3, op, ": argument 'v' must be [B, T, C], got ", v.sizes());
  TORCH_CHECK(v_first.sizes() == v.sizes() && v_in.sizes() == v.sizes(), op,
              ": arguments 'v_first' and 'v_in' must be shaped like 'v' ", v.sizes());
  TORCH_CHECK(v0.dim() == 1 && v0.size(0) == v.size(2), op, ": argument 'v0' must be [C] with C = ", v.size(2),
              ", got ", v0.sizes());
  for (const at::Tensor* t : {&v_first, &v_in, &v0})
    TORCH_CHECK(t->scalar_type() == v.scalar_type() && t->device() == v.device(), op,
                ": every argument must have the dtype and device of 'v' (", v.scalar_type(), " on ", v.device(), ")");
}

// The backward's output gradient, shaped like 'v'.
inline void check_vres_gate_dout(const char* op, const at::Tensor& v, const at::Tensor& dout) {
  TORCH_CHECK(dout.sizes() == v.sizes(), op, ": argument 'dout' must be shaped like 'v'");
}

}  // namespace rwkv7_ops
