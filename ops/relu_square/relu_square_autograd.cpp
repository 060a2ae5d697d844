// relu_square is differentiable through the recompute rule (ops/recompute_autograd.h): only x is
// kept, the backward recomputes relu(x).
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "../recompute_autograd.h"

TORCH_LIBRARY_IMPL(rwkv7, Autograd, m) {
  m.impl("relu_square", rwkv7_ops::recompute_autograd());
  m.impl("relu_square_backward", torch::autograd::autogradNotImplementedFallback());
}
