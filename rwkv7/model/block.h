// One RWKV-7 layer: x = x + att(ln1(x)); x = x + ffn(ln2(x)); layer 0 first applies ln0.
#pragma once
#include <torch/nn/module.h>

#include <utility>

#include "rwkv7/model/channel_mix.h"
#include "rwkv7/model/time_mix.h"

namespace rwkv7 {

class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const ModelShape& shape, int64_t layer_id, const at::TensorOptions& options = {});
  // resets: undefined, or [B, T] bool: where packed documents restart (doc_reset; time_mix.h).
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x, const at::Tensor& v_first,
                                            LayerState* state = nullptr, const at::Tensor& resets = {});

  int64_t layer_id;
  LayerNorm ln1{nullptr}, ln2{nullptr}, ln0{nullptr};
  TimeMix att{nullptr};
  ChannelMix ffn{nullptr};
};
TORCH_MODULE(Block);

}  // namespace rwkv7
