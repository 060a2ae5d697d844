// The argument checks every device's relu_square_backward runs first (the forward takes any x).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace rwkv7_ops {

// The backward's output gradient, shaped like 'x'.
inline void check_relu_square_dout(const char* op, const at::Tensor& x, const at::Tensor& dout) {
  TORCH_CHECK(dout.sizes() == x.sizes(), op, ": argument 'dout' must be shaped like 'x'");
}

}  // namespace rwkv7_ops
