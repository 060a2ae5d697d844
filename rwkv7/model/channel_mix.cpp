#include "rwkv7/model/channel_mix.h"

#include <ATen/ATen.h>

#include "rwkv7/model/fused_ops.h"
#include "rwkv7/model/token_shift.h"

namespace rwkv7 {

ChannelMixImpl::ChannelMixImpl(const ModelShape& s, int64_t layer, const at::TensorOptions& o) : layer_id(layer) {
  const int64_t C = s.n_embd, F = s.dim_ffn;
  x_k = register_parameter("x_k", at::zeros({1, 1, C}, o));
  key = register_module("key", Linear(C, F, o));
  value = register_module("value", Linear(F, C, o));
}

at::Tensor ChannelMixImpl::forward(const at::Tensor& x, LayerState* state, const at::Tensor& resets) {
  if (fused_ops && state == nullptr && !resets.defined()) {  // the same through the fused ops; the matmuls stay ATen's
    const int64_t C = x.size(2);
    return value(fused::relu_square(key(fused::token_shift_mix(x, x_k.view({1, C})).squeeze(0))));  // (a view, not a select)
  }
  const at::Tensor xx = token_shift(x, state ? &state->ffn_x_prev : nullptr, resets) - x;
  const at::Tensor k = at::relu(key(x + xx * x_k)).square();
  return value(k);
}

}  // namespace rwkv7
