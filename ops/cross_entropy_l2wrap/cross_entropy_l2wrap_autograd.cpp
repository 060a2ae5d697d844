// cross_entropy_l2wrap is differentiable through the recompute rule (ops/recompute_autograd.h):
// the forward keeps the logits (which the head's matmul keeps anyway) and no softmax.
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "../recompute_autograd.h"

TORCH_LIBRARY_IMPL(rwkv7, Autograd, m) {
  m.impl("cross_entropy_l2wrap", rwkv7_ops::recompute_autograd());
  m.impl("cross_entropy_l2wrap_backward", torch::autograd::autogradNotImplementedFallback());
}
