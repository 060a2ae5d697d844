// The argument checks every device's token_shift_mix runs first: one message per mistake,
// naming the op and the argument.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace rwkv7_ops {

inline void check_token_shift_mix(const char* op, const at::Tensor& x, const at::Tensor& mix) {
  TORCH_CHECK(x.dim() == 3, op, ": argument 'x' must be [B, T, C], got ", x.sizes());
  TORCH_CHECK(mix.dim() == 2 && mix.size(1) == x.size(2), op, ": argument 'mix' must be [n, C] with C = ",
              x.size(2), ", got ", mix.sizes());
  // (8: the CPU loops' scratch holds as many rows of mix, fused_cpu_kernels.h kMaxLerps)
  TORCH_CHECK(mix.size(0) >= 1 && mix.size(0) <= 8, op, ": argument 'mix' has n = ", mix.size(0),
              " lerps; 1 to 8 are supported");
  TORCH_CHECK(mix.scalar_type() == x.scalar_type() && mix.device() == x.device(), op,
              ": 'mix' must have the dtype and device of 'x' (", x.scalar_type(), " on ", x.device(), ")");
}

// The backward's output gradient: [n, B, T, C].
inline void check_token_shift_mix_dout(const char* op, const at::Tensor& x, const at::Tensor& mix,
                                       const at::Tensor& dout) {
  TORCH_CHECK(dout.sizes() == at::IntArrayRef({mix.size(0), x.size(0), x.size(1), x.size(2)}), op,
              ": argument 'dout' must be [n, B, T, C]");
}

}  // namespace rwkv7_ops
