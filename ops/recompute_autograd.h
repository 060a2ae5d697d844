// Autograd for the fused elementwise ops, one rule for all of them: an op `rwkv7::<op>` whose
// schema is followed by `rwkv7::<op>_backward(<op's arguments>, Tensor grad_<output>, ...)`
// returning one gradient per floating-point Tensor argument of <op>, in order.
//
// The forward keeps only the op's inputs (no intermediates) and the backward op recomputes what it
// needs from them: for elementwise work, recomputing in registers is cheaper than storing and
// re-reading activations, and it is where a fused step saves its memory.
//
// Each op's <op>_autograd.cpp registers it:
//   TORCH_LIBRARY_IMPL(rwkv7, Autograd, m) { m.impl("<op>", rwkv7_ops::recompute_autograd()); ... }
#pragma once

#include <torch/library.h>

namespace rwkv7_ops {

torch::CppFunction recompute_autograd();

}  // namespace rwkv7_ops
