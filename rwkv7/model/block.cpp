#include "rwkv7/model/block.h"

namespace rwkv7 {

BlockImpl::BlockImpl(const ModelShape& s, int64_t layer, const at::TensorOptions& o) : layer_id(layer) {
  auto layer_norm = [&](const char* name) {
    return register_module(name, LayerNorm(s.n_embd, o));
  };
  ln1 = layer_norm("ln1");
  ln2 = layer_norm("ln2");
  if (layer == 0) ln0 = layer_norm("ln0");
  att = register_module("att", TimeMix(s, layer, o));
  ffn = register_module("ffn", ChannelMix(s, layer, o));
}

std::pair<at::Tensor, at::Tensor> BlockImpl::forward(const at::Tensor& x_in,
                                                     const at::Tensor& v_first, LayerState* state,
                                                     const at::Tensor& resets) {
  at::Tensor x = layer_id == 0 ? ln0(x_in) : x_in;
  auto [attended, v_first_out] = att->forward(ln1(x), v_first, state, resets);
  x = x + attended;
  x = x + ffn->forward(ln2(x), state, resets);
  return {x, v_first_out};
}

}  // namespace rwkv7
