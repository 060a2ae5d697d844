// token_shift_mix on the Meta device: shapes and dtypes only, no data (meta models, opcheck,
// torch.compile). The same checks as the CPU and CUDA kernels (token_shift_mix_check.h).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <tuple>

#include "token_shift_mix_check.h"

namespace rwkv7_ops {
namespace {

at::Tensor token_shift_mix_meta(const at::Tensor& x, const at::Tensor& mix) {
  check_token_shift_mix("rwkv7::token_shift_mix (Meta)", x, mix);
  return at::empty({mix.size(0), x.size(0), x.size(1), x.size(2)}, x.options());  // [n, B, T, C]
}

std::tuple<at::Tensor, at::Tensor> token_shift_mix_backward_meta(const at::Tensor& x, const at::Tensor& mix,
                                                                 const at::Tensor& dout) {
  const char* op = "rwkv7::token_shift_mix_backward (Meta)";
  check_token_shift_mix(op, x, mix);
  check_token_shift_mix_dout(op, x, mix, dout);
  return {at::empty(x.sizes(), x.options()), at::empty(mix.sizes(), mix.options())};  // dx, dmix
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, Meta, m) {
  m.impl("token_shift_mix", &token_shift_mix_meta);
  m.impl("token_shift_mix_backward", &token_shift_mix_backward_meta);
}

}  // namespace rwkv7_ops
