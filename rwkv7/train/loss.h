// The seed's training loss: mean cross-entropy over B*T, with L2Wrap in the backward pass.
#pragma once
#include <ATen/core/Tensor.h>

namespace rwkv7 {

// logits [B, T, V], targets [B, T] -> the plain mean cross-entropy (what is logged). Its
// backward adds L2Wrap: for each position, max_logit * 1e-4 / (B*T) on the argmax logit,
// which pulls the largest logits towards 0 (independent of the loss's own gradient).
at::Tensor cross_entropy_l2wrap(const at::Tensor& logits, const at::Tensor& targets);

}  // namespace rwkv7
