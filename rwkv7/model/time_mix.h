// RWKV-7 time mix (the seed's RWKV_Tmix_x070): token shift, LoRA-made decay / in-context
// rate / value residual / gate, the WKV-7 recurrence, GroupNorm and the r·k bonus.
#pragma once
#include <torch/nn/module.h>

#include <utility>

#include "rwkv7/model/layers.h"
#include "rwkv7/model/model_config.h"
#include "rwkv7/model/state.h"

namespace rwkv7 {

class TimeMixImpl : public torch::nn::Module {
 public:
  TimeMixImpl(const ModelShape& shape, int64_t layer_id, const at::TensorOptions& options = {});

  // x: [B, T, C]; v_first: the value of layer 0 (ignored and produced by layer 0).
  // With a state, the sequence continues from it (and the state is updated): RNN mode.
  // With resets ([B, T] bool, packed documents), the token shift and the WKV state restart at
  // every marked position: the WKV state from time_state (or 0), through rwkv7::wkv7_reset
  // (the composite path: the fused ops have no restarts).
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& x, const at::Tensor& v_first,
                                            LayerState* state = nullptr, const at::Tensor& resets = {});

  // The fused ops (ops/op_table.h) instead of the composite code, in training (no state).
  std::pair<at::Tensor, at::Tensor> forward_fused(const at::Tensor& x, const at::Tensor& v_first);

  int64_t layer_id, n_head, head_size;
  bool fused_ops = false;
  bool has_value_residual;  // v0/v1/v2 exist (layer 0 of inference checkpoints may lack them)
  // token-shift mix coefficients, [1, 1, C]
  at::Tensor x_r, x_w, x_k, x_v, x_a, x_g;
  // LoRAs: base [1, 1, C], down [C, D], up [D, C]
  at::Tensor w1, w2, w0, a1, a2, a0, v1, v2, v0, g1, g2;
  at::Tensor k_k, k_a;  // [1, 1, C]
  at::Tensor r_k;       // [H, N]
  // State tuning (RWKV-PEFT's time_state, [H, N, N], S[value][key]): every sequence's WKV state
  // starts here instead of at 0. Undefined unless rwkv7/peft/adapters.h adds it.
  at::Tensor time_state;
  void add_time_state();  // registers time_state = 0, [H, N, N], beside r_k
  Linear receptance{nullptr}, key{nullptr}, value{nullptr}, output{nullptr};
  GroupNorm ln_x{nullptr};
};
TORCH_MODULE(TimeMix);

}  // namespace rwkv7
