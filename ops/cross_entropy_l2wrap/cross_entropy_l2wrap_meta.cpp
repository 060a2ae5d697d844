// cross_entropy_l2wrap on the Meta device: shapes and dtypes only, no data (meta models, opcheck,
// torch.compile). The same checks as the CPU and CUDA kernels (cross_entropy_l2wrap_check.h).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "cross_entropy_l2wrap_check.h"

namespace rwkv7_ops {
namespace {

// The loss: a scalar, float32 at least (bf16 and fp16 logits are widened, as the kernels compute).
at::Tensor cross_entropy_l2wrap_meta(const at::Tensor& logits, const at::Tensor& targets) {
  check_cross_entropy_l2wrap("rwkv7::cross_entropy_l2wrap (Meta)", logits, targets);
  const bool narrow = logits.scalar_type() == at::kBFloat16 || logits.scalar_type() == at::kHalf;
  return at::empty({}, logits.options().dtype(narrow ? at::kFloat : logits.scalar_type()));
}

at::Tensor cross_entropy_l2wrap_backward_meta(const at::Tensor& logits, const at::Tensor& targets,
                                              const at::Tensor& dloss) {
  const char* op = "rwkv7::cross_entropy_l2wrap_backward (Meta)";
  check_cross_entropy_l2wrap(op, logits, targets);
  check_cross_entropy_l2wrap_dloss(op, dloss);
  return at::empty(logits.sizes(), logits.options());  // dlogits [M, V]
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, Meta, m) {
  m.impl("cross_entropy_l2wrap", &cross_entropy_l2wrap_meta);
  m.impl("cross_entropy_l2wrap_backward", &cross_entropy_l2wrap_backward_meta);
}

}  // namespace rwkv7_ops
