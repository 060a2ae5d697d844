// The one-pass CPU kernels of the fused ops (fused_ops: 1) for float32 and bfloat16 tensors,
// float32 arithmetic inside: each op's math is in the header comment of its ops/<op>/<op>_cpu.cpp
// (the composite there stays the float64 reference) and its loops in ops/<op>/<op>_cpu_loops.inc.
// Like the fast WKV-7 kernel (ops/wkv7/cpu_fast/wkv7_fast.h) the loops are compiled once per
// instruction set and hold nothing but plain code over raw pointers; this header is data only.
//
// Work is cut into fixed blocks (kRowsPerBlock rows; relu_square kElementsPerBlock elements;
// cross_entropy_l2wrap one row), independent of the thread count: a per-channel gradient is summed
// inside each block into that block's slice of `partial` [blocks, k, C], and the caller adds the
// slices in block order, so the result is the same bit for bit on any number of threads.
// Every tensor pointer is to contiguous memory; `bf16` says whether the tensors (inputs, outputs
// and parameters alike) are bfloat16 or float32. Partial sums and row losses are float / double.
#pragma once
#include <cstdint>

namespace rwkv7_ops::fused_cpu {

constexpr int64_t kRowsPerBlock = 32;
constexpr int64_t kElementsPerBlock = 8192;
// Scratch one block uses: rows of C floats (the row-wise ops), of kElementsPerBlock (relu_square)
// or of V (the cross entropy).
// Each loops file static_asserts that its highest row fits.
constexpr int64_t kRowScratchRows = 17, kReluScratchRows = 3, kCrossEntropyScratchRows = 3;
constexpr int64_t kMaxLerps = 8;  // token_shift_mix's n (token_shift_mix_check.h refuses more)

struct TokenShiftMix {  // x [B, T, C], mix [n, C], out / dout [n, B, T, C]
  int64_t B = 0, T = 0, C = 0, n = 0;
  bool bf16 = false;
  const void *x = nullptr, *mix = nullptr, *dout = nullptr;
  void *out = nullptr, *dx = nullptr;
  float* partial = nullptr;  // backward: dmix, [blocks, n, C]
};

struct ReluSquare {  // x, out, dout, dx: numel elements
  int64_t numel = 0;
  bool bf16 = false;
  const void *x = nullptr, *dout = nullptr;
  void *out = nullptr, *dx = nullptr;
};

struct VresGate {  // v, v_first, v_in, out and their gradients [rows, C]; v0 [C]
  int64_t rows = 0, C = 0;
  bool bf16 = false;
  const void *v = nullptr, *v_first = nullptr, *v_in = nullptr, *v0 = nullptr, *dout = nullptr;
  void *out = nullptr, *dv = nullptr, *dv_first = nullptr, *dv_in = nullptr;
  float* partial = nullptr;  // backward: dv0, [blocks, 1, C]
};

struct KkPre {  // k, a_in and the outputs and gradients [rows, C] (H heads of C / H); a0, k_k, k_a [C]
  int64_t rows = 0, C = 0, H = 0;
  bool bf16 = false;
  const void *k = nullptr, *a_in = nullptr, *a0 = nullptr, *k_k = nullptr, *k_a = nullptr;
  const void *dk_out = nullptr, *dneg_kk = nullptr, *dkk_a = nullptr;
  void *k_out = nullptr, *neg_kk = nullptr, *kk_a = nullptr, *dk = nullptr, *da_in = nullptr;
  float* partial = nullptr;  // backward: da0, dk_k, dk_a, [blocks, 3, C]
};

struct LnxRkvresXg {  // y, r, k, v, g, out and gradients [rows, C]; r_k, ln_w, ln_b [C]
  int64_t rows = 0, C = 0, H = 0;
  float eps = 0;
  bool bf16 = false;
  const void *y = nullptr, *r = nullptr, *k = nullptr, *v = nullptr, *r_k = nullptr, *g = nullptr;
  const void *ln_w = nullptr, *ln_b = nullptr, *dout = nullptr;
  void *out = nullptr, *dy = nullptr, *dr = nullptr, *dk = nullptr, *dv = nullptr, *dg = nullptr;
  float* partial = nullptr;  // backward: dr_k, dln_w, dln_b, [blocks, 3, C]
};

struct CrossEntropy {  // logits, dlogits [rows, V]; targets [rows] in [0, V)
  int64_t rows = 0, V = 0;
  bool bf16 = false;
  const void* logits = nullptr;
  const int64_t* targets = nullptr;
  double* row_loss = nullptr;  // forward: logsumexp - logit of the target, per row
  float scale = 0;             // backward: dloss / rows
  void* dlogits = nullptr;
};

// One block of an op, forward or backward, with the op's scratch (above) in `scratch`.
template <typename P>
using BlockKernel = void (*)(const P& p, int64_t block, float* scratch);

struct Kernels {
  BlockKernel<TokenShiftMix> token_shift_mix, token_shift_mix_backward;
  BlockKernel<ReluSquare> relu_square, relu_square_backward;
  BlockKernel<VresGate> vres_gate, vres_gate_backward;
  BlockKernel<KkPre> kk_pre, kk_pre_backward;
  BlockKernel<LnxRkvresXg> lnx_rkvres_xg, lnx_rkvres_xg_backward;
  BlockKernel<CrossEntropy> cross_entropy, cross_entropy_backward;
};

// Each instruction set's loops (ops/cpu_kernels/fused_cpu_<isa>.cpp).
namespace baseline { extern const Kernels kernels; }
namespace avx2 { extern const Kernels kernels; }
namespace avx512 { extern const Kernels kernels; }

}  // namespace rwkv7_ops::fused_cpu
