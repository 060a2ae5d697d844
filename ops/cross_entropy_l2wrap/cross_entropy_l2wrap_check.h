// The argument checks every device's cross_entropy_l2wrap runs first.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace rwkv7_ops {

inline void check_cross_entropy_l2wrap(const char* op, const at::Tensor& logits, const at::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) >= 1 && logits.size(1) >= 1, op,
              ": argument 'logits' must be [M, V], got ", logits.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0), op, ": argument 'targets' must be [M] with M = ",
              logits.size(0), ", got ", targets.sizes());
  TORCH_CHECK(targets.scalar_type() == at::kLong && targets.device() == logits.device(), op,
              ": argument 'targets' must be int64 on ", logits.device());
}

// The backward's output gradient: the loss is a scalar, so one value.
inline void check_cross_entropy_l2wrap_dloss(const char* op, const at::Tensor& dloss) {
  TORCH_CHECK(dloss.numel() == 1, op, ": argument 'dloss' must hold one value");
}

}  // namespace rwkv7_ops
