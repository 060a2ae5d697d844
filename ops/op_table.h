// The one table of the rwkv7 op library: every operator is a row {name, schema, kernels}.
// ops/schema.cpp m.def()s each row's schema (nothing else declares schemas), and
// tests/python/test_op_registration.py reads the rows (through rwkv7_op_table(), exported by
// schema.cpp) and checks that the kernels a row names are the ones registered, and that every op
// has CPU (CUDA-only pieces excepted), Meta and Autograd. Each op's kernels live in its own folder,
// ops/<op>/, one TORCH_LIBRARY_IMPL per dispatch key (docs/architecture.md: adding an op is one
// folder plus its rows here). No includes: plain data, readable from anywhere.
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
//   wkv7_state_passing(r, w, k, v, a, b, s0) -> (y, sT)    wkv7_state that also returns the final
//   state sT [B, H, N, N] (float32; float64 for float64 inputs on the CPU) and is differentiable
//   through it: the backward takes dsT as well as dy (long context: a sample runs as chunks, each
//   from the last one's sT; BlinkDL/RWKV-CUDA's state-passing kernel). _forward/_backward as above.
//
//   wkv7_reset(r, w, k, v, a, b, s0, reset, s_reset) -> (y, sT)    wkv7_state_passing whose state
//   restarts from s_reset (shaped as s0) before every step t with reset[b, t] (bool [B, T]): packed
//   documents (doc_reset: 1), each running as if it were its own sequence. Differentiable in the six
//   inputs, s0 and s_reset (which gets the gradient of every restart). _forward/_backward as above.
//
//   wkv7_raw_decay(r, x, k, v, a, b) -> y    wkv7 with w = -softplus(-x) - 0.5 computed inside the
//   kernel in float (fused_ops: 1); its _forward/_backward pieces exist on CUDA only (elsewhere
//   the op is the composite and differentiates through it), so their rows have no CPU kernel.
//
// ---- the fused ops of the training step (fused_ops: 1); each differentiable through
// ---- ops/recompute_autograd.h: <op>_backward takes <op>'s arguments and the output gradients ----
//   token_shift_mix(x [B,T,C], mix [n,C]) -> [n,B,T,C]        x + (shift(x) - x) * mix[j]  (ops/token_shift_mix/)
//   lnx_rkvres_xg(y, r, k, v, r_k, g, ln_w, ln_b, H, eps) -> (GroupNorm_H(y) + (sum_n r k r_k) v) * g  (ops/lnx_rkvres_xg/)
//   kk_pre(k, a_in, a0, k_k, k_a, H) -> (k_out, neg_kk, kk_a)  the scan's k, a, b (ops/kk_pre/)
//   vres_gate(v, v_first, v_in, v0) -> v + (v_first - v) * sigmoid(v0 + v_in)  (ops/vres_gate/)
//   relu_square(x) -> relu(x)^2                                  (ops/relu_square/)
//   cross_entropy_l2wrap(logits [M,V], targets [M]) -> mean CE, L2Wrap in its backward  (ops/cross_entropy_l2wrap/)
#pragma once

namespace rwkv7_ops {

// The dispatch keys an op has a kernel for (CUDA: when the library is built with the CUDA op).
enum OpKernel : unsigned { kCPU = 1u << 0, kCUDA = 1u << 1, kMeta = 1u << 2, kAutograd = 1u << 3 };
inline constexpr unsigned kEveryKernel = kCPU | kCUDA | kMeta | kAutograd;
inline constexpr unsigned kCudaOnly = kCUDA | kMeta | kAutograd;  // a CUDA kernel's pieces

struct OpRow {
  const char* name;
  const char* schema;  // what m.def() takes: "<name>(<arguments>) -> <returns>"
  unsigned kernels;    // OpKernel bits
};

inline constexpr OpRow kOpTable[] = {
    // ops/wkv7/
    {"wkv7", "wkv7(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b) -> Tensor", kEveryKernel},
    {"wkv7_forward",
     "wkv7_forward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b)"
     " -> (Tensor y, Tensor saved_state, Tensor saved_sa)",
     kEveryKernel},
    {"wkv7_backward",
     "wkv7_backward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b,"
     " Tensor dy, Tensor saved_state, Tensor saved_sa)"
     " -> (Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db)",
     kEveryKernel},
    {"wkv7_state", "wkv7_state(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0) -> Tensor",
     kEveryKernel},
    {"wkv7_state_forward",
     "wkv7_state_forward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0)"
     " -> (Tensor y, Tensor saved_state, Tensor saved_sa)",
     kEveryKernel},
    {"wkv7_state_backward",
     "wkv7_state_backward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0,"
     " Tensor dy, Tensor saved_state, Tensor saved_sa)"
     " -> (Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db, Tensor ds0)",
     kEveryKernel},
    {"wkv7_state_passing",
     "wkv7_state_passing(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0)"
     " -> (Tensor y, Tensor sT)",
     kEveryKernel},
    {"wkv7_state_passing_forward",
     "wkv7_state_passing_forward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0)"
     " -> (Tensor y, Tensor sT, Tensor saved_state, Tensor saved_sa)",
     kEveryKernel},
    {"wkv7_state_passing_backward",
     "wkv7_state_passing_backward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0,"
     " Tensor dy, Tensor dsT, Tensor saved_state, Tensor saved_sa)"
     " -> (Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db, Tensor ds0)",
     kEveryKernel},
    {"wkv7_reset",
     "wkv7_reset(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0, Tensor reset, Tensor s_reset)"
     " -> (Tensor y, Tensor sT)",
     kEveryKernel},
    {"wkv7_reset_forward",
     "wkv7_reset_forward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0, Tensor reset,"
     " Tensor s_reset) -> (Tensor y, Tensor sT, Tensor saved_state, Tensor saved_sa)",
     kEveryKernel},
    {"wkv7_reset_backward",
     "wkv7_reset_backward(Tensor r, Tensor w, Tensor k, Tensor v, Tensor a, Tensor b, Tensor s0, Tensor reset,"
     " Tensor s_reset, Tensor dy, Tensor dsT, Tensor saved_state, Tensor saved_sa)"
     " -> (Tensor dr, Tensor dw, Tensor dk, Tensor dv, Tensor da, Tensor db, Tensor ds0, Tensor ds_reset)",
     kEveryKernel},
    {"wkv7_raw_decay", "wkv7_raw_decay(Tensor r, Tensor x, Tensor k, Tensor v, Tensor a, Tensor b) -> Tensor",
     kEveryKernel},
    {"wkv7_raw_decay_forward",
     "wkv7_raw_decay_forward(Tensor r, Tensor x, Tensor k, Tensor v, Tensor a, Tensor b)"
     " -> (Tensor y, Tensor saved_state, Tensor saved_sa)",
     kCudaOnly},
    {"wkv7_raw_decay_backward",
     "wkv7_raw_decay_backward(Tensor r, Tensor x, Tensor k, Tensor v, Tensor a, Tensor b,"
     " Tensor dy, Tensor saved_state, Tensor saved_sa)"
     " -> (Tensor dr, Tensor dx, Tensor dk, Tensor dv, Tensor da, Tensor db)",
     kCudaOnly},

    // ops/token_shift_mix/
    {"token_shift_mix", "token_shift_mix(Tensor x, Tensor mix) -> Tensor", kEveryKernel},
    {"token_shift_mix_backward",
     "token_shift_mix_backward(Tensor x, Tensor mix, Tensor dout) -> (Tensor dx, Tensor dmix)", kEveryKernel},
    // ops/kk_pre/
    {"kk_pre",
     "kk_pre(Tensor k, Tensor a_in, Tensor a0, Tensor k_k, Tensor k_a, int H)"
     " -> (Tensor k_out, Tensor neg_kk, Tensor kk_a)",
     kEveryKernel},
    {"kk_pre_backward",
     "kk_pre_backward(Tensor k, Tensor a_in, Tensor a0, Tensor k_k, Tensor k_a, int H,"
     " Tensor dk_out, Tensor dneg_kk, Tensor dkk_a)"
     " -> (Tensor dk, Tensor da_in, Tensor da0, Tensor dk_k, Tensor dk_a)",
     kEveryKernel},
    // ops/lnx_rkvres_xg/
    {"lnx_rkvres_xg",
     "lnx_rkvres_xg(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w, Tensor ln_b,"
     " int H, float eps) -> Tensor",
     kEveryKernel},
    {"lnx_rkvres_xg_backward",
     "lnx_rkvres_xg_backward(Tensor y, Tensor r, Tensor k, Tensor v, Tensor r_k, Tensor g, Tensor ln_w,"
     " Tensor ln_b, int H, float eps, Tensor dout)"
     " -> (Tensor dy, Tensor dr, Tensor dk, Tensor dv, Tensor dr_k, Tensor dg, Tensor dln_w, Tensor dln_b)",
     kEveryKernel},
    // ops/vres_gate/
    {"vres_gate", "vres_gate(Tensor v, Tensor v_first, Tensor v_in, Tensor v0) -> Tensor", kEveryKernel},
    {"vres_gate_backward",
     "vres_gate_backward(Tensor v, Tensor v_first, Tensor v_in, Tensor v0, Tensor dout)"
     " -> (Tensor dv, Tensor dv_first, Tensor dv_in, Tensor dv0)",
     kEveryKernel},
    // ops/relu_square/
    {"relu_square", "relu_square(Tensor x) -> Tensor", kEveryKernel},
    {"relu_square_backward", "relu_square_backward(Tensor x, Tensor dout) -> Tensor", kEveryKernel},
    // ops/cross_entropy_l2wrap/
    {"cross_entropy_l2wrap", "cross_entropy_l2wrap(Tensor logits, Tensor targets) -> Tensor", kEveryKernel},
    {"cross_entropy_l2wrap_backward",
     "cross_entropy_l2wrap_backward(Tensor logits, Tensor targets, Tensor dloss) -> Tensor", kEveryKernel},
};

// Each row's schema starts with its name and '(' (checked when this header compiles).
constexpr bool schema_names_row(const OpRow& row) {
  int i = 0;
  for (; row.name[i] != '\0'; ++i)
    if (row.schema[i] != row.name[i]) return false;
  return row.schema[i] == '(';
}

constexpr bool every_schema_names_its_row() {
  for (const OpRow& row : kOpTable)
    if (!schema_names_row(row)) return false;
  return true;
}
static_assert(every_schema_names_its_row(), "an op_table.h row's schema must begin with '<name>('");

}  // namespace rwkv7_ops
