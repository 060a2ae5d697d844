// The one schema file of the rwkv7 op library (PyTorch's custom-op recipe): every operator of
// the library is declared here, so this file is the library's whole interface. Each op's kernels
// live in its own folder, ops/<op>/, one TORCH_LIBRARY_IMPL per dispatch key (docs/architecture.md).
//
// ---- wkv7: the WKV-7 recurrence (ops/wkv7/) ----
//   wkv7(r, w, k, v, a, b) -> y                           differentiable (Autograd key)
//   wkv7_forward(...)      -> (y, saved_state, saved_sa)  what backward needs
//   wkv7_backward(..., dy, saved_state, saved_sa) -> (dr, dw, dk, dv, da, db)
//
// All tensors are [B, T, H, N]; the decay is d = exp(-exp(w)). The meaning of saved_state /
// saved_sa is private to each device's kernels (the CPU keeps chunk-start states, CUDA the seed's
// chunk-end states plus S·a), so the backward op must run on the device that ran the forward.
//
// Precondition on w: the CUDA backward (like the seed's) steps the state back in time by dividing
// by the decay d = exp(-exp(w)). The model's soft clamp keeps w <= -0.5, so d >= 0.545 and the
// division is tame. For raw inputs with larger w the decay approaches 0 and the gradients lose all
// accuracy (already at w = 2, d = 6e-4). The CPU kernel recomputes instead and has no such limit.
// CUDA also needs N = 64 and T % 16 == 0.
//
// ---- the fused ops of the training step (fused_ops: 1); each differentiable through
// ---- ops/recompute_autograd.h: <op>_backward takes <op>'s arguments and the output gradients ----
//   token_shift_mix(x [B,T,C], mix [n,C]) -> [n,B,T,C]        x + (shift(x) - x) * mix[j]  (ops/token_shift_mix/)
//   kk_pre(k, a_in, a0, k_k, k_a, H) -> (k_out, neg_kk, kk_a)  the scan's k, a, b (ops/kk_pre/)
#include <torch/library.h>

TORCH_LIBRARY(rwkv7, m) {
  m.def("wkv7(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b) -> Tensor");
  m.def(
      "wkv7_forward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b)"
      " -> (Tensor y, Tensor saved_state, Tensor saved_sa)");
  m.def(
      "wkv7_backward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,"
      " Tensor dy, Tensor saved_state, Tensor saved_sa)"
      " -> (Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db)");

  m.def("token_shift_mix(Tensor x, Tensor mix) -> Tensor");
  m.def("token_shift_mix_backward(Tensor x, Tensor mix, Tensor dout) -> (Tensor dx, Tensor dmix)");
  m.def("kk_pre(Tensor k, Tensor a_in, Tensor a0, Tensor k_k, Tensor k_a, int H)"
        " -> (Tensor k_out, Tensor neg_kk, Tensor kk_a)");
  m.def("kk_pre_backward(Tensor k, Tensor a_in, Tensor a0, Tensor k_k, Tensor k_a, int H,"
        " Tensor dk_out, Tensor dneg_kk, Tensor dkk_a)"
        " -> (Tensor dk, Tensor da_in, Tensor da0, Tensor dk_k, Tensor dk_a)");
}
