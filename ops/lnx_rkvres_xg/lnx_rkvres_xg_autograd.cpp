// lnx_rkvres_xg is differentiable through the recompute rule (ops/recompute_autograd.h).
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include "../recompute_autograd.h"

TORCH_LIBRARY_IMPL(rwkv7, Autograd, m) {
  m.impl("lnx_rkvres_xg", rwkv7_ops::recompute_autograd());
  m.impl("lnx_rkvres_xg_backward", torch::autograd::autogradNotImplementedFallback());
}
