// The recurrent state of one layer, for inference that carries it from call to call (RNN
// mode): the last input of the time mix and of the channel mix (their token shift looks one
// token back) and the WKV state S.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace rwkv7 {

struct LayerState {
  at::Tensor att_x_prev;  // [B, C]
  at::Tensor wkv;         // [B, H, N, N], fp32
  at::Tensor ffn_x_prev;  // [B, C]
};

using ModelState = std::vector<LayerState>;  // one per layer

}  // namespace rwkv7
