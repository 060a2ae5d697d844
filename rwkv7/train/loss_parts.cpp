#include "rwkv7/train/loss_parts.h"

#include <ATen/ATen.h>

#include "rwkv7/train/loss.h"

namespace rwkv7 {

BatchCounts batch_counts(const at::Tensor& targets) {
  return {(targets != -100).sum().item<int64_t>(), targets.numel()};
}

at::Tensor batch_part_loss(RWKV& model, const at::Tensor& hidden, const at::Tensor& targets, const BatchCounts& n,
                           const LossOptions& o) {
  // the chunked head and the fused loss are means over their rows (they take no ignored targets)
  const double share = double(targets.numel()) / double(n.positions);
  if (o.head_chunk > 0) return chunked_head_loss(hidden, model->head->weight, targets, o.head_chunk) * share;
  const at::Tensor logits = model->head(hidden);
  if (o.fused_loss) return cross_entropy_l2wrap(logits, targets, /*fused=*/true) * share;
  return cross_entropy_l2wrap_part(logits, targets, n.targets, n.positions);
}

}  // namespace rwkv7
