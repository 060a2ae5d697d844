// A step's batch taken in parts (accumulate_grad_batches' micro-batches, chunk_ctx's chunks): each
// part's loss is scaled by the whole batch's counts, so that the parts' losses add up to the
// batch's loss and their gradients to its gradient, as if the batch had run in one piece.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "rwkv7/model/model.h"

namespace rwkv7 {

struct BatchCounts {
  int64_t targets = 0;    // the batch's targets that are not -100 (the cross-entropy's mean)
  int64_t positions = 0;  // B * T (L2Wrap's divisor; the fused losses' mean)
};
BatchCounts batch_counts(const at::Tensor& targets);

struct LossOptions {
  int64_t head_chunk = 0;   // as the unchunked step: the head and loss in row chunks
  bool fused_loss = false;  // rwkv7::cross_entropy_l2wrap
};

// The loss of one part (hidden: the part's ln_out output [b, t, C]; targets [b, t]), scaled.
at::Tensor batch_part_loss(RWKV& model, const at::Tensor& hidden, const at::Tensor& targets, const BatchCounts& batch,
                           const LossOptions& options);

}  // namespace rwkv7
