// RWKV-7 channel mix (the seed's RWKV_CMix_x070): token shift, squared-ReLU MLP.
#pragma once
#include <torch/nn/module.h>
#include "rwkv7/model/layers.h"

#include "rwkv7/model/model_config.h"
#include "rwkv7/model/state.h"

namespace rwkv7 {

class ChannelMixImpl : public torch::nn::Module {
 public:
  ChannelMixImpl(const ModelShape& shape, int64_t layer_id, const at::TensorOptions& options = {});
  // k = x + (shift(x) - x) * x_k ;  out = value(relu(key(k))^2)
  at::Tensor forward(const at::Tensor& x, LayerState* state = nullptr, const at::Tensor& resets = {});

  int64_t layer_id;
  bool fused_ops = false;  // the fused ops (ops/op_table.h) in training (no state)
  at::Tensor x_k;  // [1, 1, C]
  Linear key{nullptr}, value{nullptr};
};
TORCH_MODULE(ChannelMix);

}  // namespace rwkv7
