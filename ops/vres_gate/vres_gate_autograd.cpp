// vres_gate is differentiable through the recompute rule (ops/recompute_autograd.h).
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "../recompute_autograd.h"

TORCH_LIBRARY_IMPL(rwkv7, Autograd, m) {
  m.impl("vres_gate", rwkv7_ops::recompute_autograd());
  m.impl("vres_gate_backward", torch::autograd::autogradNotImplementedFallback());
}
