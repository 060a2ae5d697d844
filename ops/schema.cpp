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
// CUDA also needs N = 64 or 128 and T % 16 == 0.
//
//   wkv7_state(r, w, k, v, a, b, s0) -> y    wkv7 from the initial state s0 instead of 0: [H, N, N]
//   shared by every sample (RWKV-PEFT's time_state, state tuning) or [B, H, N, N]; differentiable
//   in s0 too (a shared state's gradient is the sum over the batch). _forward/_backward as wkv7's.
//
//   wkv7_raw_decay(r, x, k, v, a, b) -> y    wkv7 with w = -softplus(-x) - 0.5 computed inside the
//   kernel in float (fused_ops: 1); its _forward/_backward pieces exist on CUDA only (elsewhere
//   the op is the composite and differentiates through it).
//
// ---- the fused ops of the training step (fused_ops: 1); each differentiable through
// ---- ops/recompute_autograd.h: <op>_backward takes <op>'s arguments and the output gradients ----
//   token_shift_mix(x [B,T,C], mix [n,C]) -> [n,B,T,C]        x + (shift(x) - x) * mix[j]  (ops/token_shift_mix/)
//   lnx_rkvres_xg(y, r, k, v, r_k, g, ln_w, ln_b, H, eps) -> (GroupNorm_H(y) + (sum_n r k r_k) v) * g  (ops/lnx_rkvres_xg/)
//   kk_pre(k, a_in, a0, k_k, k_a, H) -> (k_out, neg_kk, kk_a)  the scan's k, a, b (ops/kk_pre/)
//   vres_gate(v, v_first, v_in, v0) -> v + (v_first - v) * sigmoid(v0 + v_in)  (ops/vres_gate/)
//   relu_square(x) -> relu(x)^2                                  (ops/relu_square/)
//   cross_entropy_l2wrap(logits [M,V], targets [M]) -> mean CE, L2Wrap in its backward  (ops/cross_entropy_l2wrap/)
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

  m.def("wkv7_state(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0) -> Tensor");
  m.def(
      "wkv7_state_forward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0)"
      " -> (Tensor y, Tensor saved_state, Tensor saved_sa)");
  m.def(
      "wkv7_state_backward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0,"
      " Tensor dy, Tensor saved_state, Tensor saved_sa)"
      " -> (Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db, Tensor ds0)");

  m.def("wkv7_raw_decay(Tensor r, Tensor x, Tensor k, Tensor v, Tensor a, Tensor b) -> Tensor");
  m.def(
      "wkv7_raw_decay_forward(Tensor r, Tensor x, Tensor k, Tensor v, Tensor a, Tensor b)"
      " -> (Tensor y, Tensor saved_state, Tensor saved_sa)");
  m.def(
      "wkv7_raw_decay_backward(Tensor r, Tensor x, Tensor k, Tensor v, Tensor a, Tensor b,"
      " Tensor dy, Tensor saved_state, Tensor saved_sa)"
      " -> (Tensor dr, Tensor dx, Tensor dk, Tensor dv, Tensor da, Tensor db)");

  m.def("token_shift_mix(Tensor x, Tensor mix) -> Tensor");
  m.def("token_shift_mix_backward(Tensor x, Tensor mix, Tensor dout) -> (Tensor dx, Tensor dmix)");
  m.def("kk_pre(Tensor k, Tensor a_in, Tensor a0, Tensor k_k, Tensor k_a, int H)"
        " -> (Tensor k_out, Tensor neg_kk, Tensor kk_a)");
  m.def("kk_pre_backward(Tensor k, Tensor a_in, Tensor a0, Tensor k_k, Tensor k_a, int H,"
        " Tensor dk_out, Tensor dneg_kk, Tensor dkk_a)"
        " -> (Tensor dk, Tensor da_in, Tensor da0, Tensor dk_k, Tensor dk_a)");
  m.def("lnx_rkvres_xg(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w, Tensor ln_b,"
        " int H, float eps) -> Tensor");
  m.def("lnx_rkvres_xg_backward(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w,"
        " Tensor ln_b, int H, float eps, Tensor dout)"
        " -> (Tensor dy, Tensor dr, Tensor dk, Tensor dv, Tensor dr_k, Tensor dg, Tensor dln_w, Tensor dln_b)");
  m.def("vres_gate(Tensor v, Tensor v_first, Tensor v_in, Tensor v0) -> Tensor");
  m.def("vres_gate_backward(Tensor v, Tensor v_first, Tensor v_in, Tensor v0, Tensor dout)"
        " -> (Tensor dv, Tensor dv_first, Tensor dv_in, Tensor dv0)");
  m.def("relu_square(Tensor x) -> Tensor");
  m.def("relu_square_backward(Tensor x, Tensor dout) -> Tensor");
  m.def("cross_entropy_l2wrap(Tensor logits, Tensor targets) -> Tensor");
  m.def("cross_entropy_l2wrap_backward(Tensor logits, Tensor targets, Tensor dloss) -> Tensor");
}
