// The seed's training loss: mean cross-entropy over B*T, with L2Wrap in the backward pass.
#pragma once
#include <ATen/core/Tensor.h>

namespace rwkv7 {

// logits [B, T, V], targets [B, T] -> the plain mean cross-entropy (what is logged). Its
// backward adds L2Wrap: for each position, max_logit * 1e-4 / (B*T) on the argmax logit,
// which pulls the largest logits towards 0 (independent of the loss's own gradient). Both terms
// are scaled by the incoming gradient (the seed's L2Wrap returned its term unscaled: the same
// where that gradient is 1, as in the training loop, wrong elsewhere).
// `fused`: one op (rwkv7::cross_entropy_l2wrap) instead of ATen's cross_entropy + L2Wrap.
at::Tensor cross_entropy_l2wrap(const at::Tensor& logits, const at::Tensor& targets, bool fused = false);

// One part of a batch's loss (long context: one chunk of every sample), scaled so that the parts
// add up to the whole batch's loss and gradient: the part's cross-entropies summed over its
// targets / `targets_in_batch` (the batch's targets that are not -100), and L2Wrap's term
// 1e-4 max / `positions_in_batch` (the batch's B*T).
at::Tensor cross_entropy_l2wrap_part(const at::Tensor& logits, const at::Tensor& targets, int64_t targets_in_batch,
                                     int64_t positions_in_batch);

// The same loss from the head's input (hidden [B, T, C], head weight [V, C]), `chunk` rows at a
// time: each chunk's logits are made, turned into loss and gradients at once (dhidden, dweight),
// and dropped, so the full [B*T, V] logits never exist. The gradients are kept for the backward,
// which only scales them by the incoming gradient.
at::Tensor chunked_head_loss(const at::Tensor& hidden, const at::Tensor& head_weight, const at::Tensor& targets,
                             int64_t chunk);

}  // namespace rwkv7
