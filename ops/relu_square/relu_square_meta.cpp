// relu_square on the Meta device: shapes and dtypes only, no data (meta models, opcheck,
// torch.compile). The same checks as the CUDA kernels (relu_square_check.h).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "relu_square_check.h"

namespace rwkv7_ops {
namespace {

at::Tensor relu_square_meta(const at::Tensor& x) { return at::empty(x.sizes(), x.options()); }

at::Tensor relu_square_backward_meta(const at::Tensor& x, const at::Tensor& dout) {
  check_relu_square_dout("rwkv7::relu_square_backward (Meta)", x, dout);
  return at::empty(x.sizes(), x.options());
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, Meta, m) {
  m.impl("relu_square", &relu_square_meta);
  m.impl("relu_square_backward", &relu_square_backward_meta);
}

}  // namespace rwkv7_ops
