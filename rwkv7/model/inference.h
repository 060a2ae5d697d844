// Inference that carries the state (RNN mode): a prompt in one pass, then one token at a time
// at constant cost per token.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "rwkv7/model/model.h"
#include "rwkv7/model/state.h"

namespace rwkv7 {

// The state before any token: zeros, or the model's tuned time_state where it has one.
ModelState zero_state(const RWKV& model, int64_t batch);

// tokens [B, T] (T >= 1) continuing from `state` (updated) -> logits [B, T, V]: the same
// numbers as RWKV::forward over the whole sequence so far.
at::Tensor forward_with_state(RWKV& model, const at::Tensor& tokens, ModelState& state);

}  // namespace rwkv7
