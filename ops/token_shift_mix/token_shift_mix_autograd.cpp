// token_shift_mix is differentiable through the recompute rule (ops/recompute_autograd.h): the
// forward keeps x and mix, token_shift_mix_backward recomputes the shift.
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "../recompute_autograd.h"

TORCH_LIBRARY_IMPL(rwkv7, Autograd, m) {
  m.impl("token_shift_mix", rwkv7_ops::recompute_autograd());
  m.impl("token_shift_mix_backward", torch::autograd::autogradNotImplementedFallback());
}
