// The fast WKV-7 CPU kernel for float32 and bfloat16 tensors (float32 accumulation): the same
// recurrence as the reference loops in ../wkv7_cpu.cpp, written so that every inner loop runs
// along a row of the N x N state (contiguous, no reduction carried across lanes except in the
// lane-split dot products), and compiled once per instruction set (baseline x86-64, AVX2+FMA,
// AVX-512) with the best one the processor has chosen at run time, the way ATen builds its CPU
// kernels. Only the summation order of the dot products (16 partial sums) and FMA contraction
// differ from the reference, so results agree with it to float32 rounding.
//
// The per-ISA files hold nothing but plain loops over raw pointers (no ATen or std templates):
// an inline function compiled with AVX-512 in one file and merged by the linker into code that
// runs on a processor without it would crash. Threads and memory come from the caller.
#pragma once
#include <cstdint>

namespace rwkv7_ops::wkv7_fast {

constexpr int64_t kChunk = 16;  // the backward recomputes the states of kChunk steps from a saved one

// One call's tensors, all contiguous [B, T, H, N] (bf16 or float as `bf16` says), states float.
struct Problem {
  int64_t B = 0, T = 0, H = 0, N = 0;
  bool bf16 = false;
  const void *r = nullptr, *w = nullptr, *k = nullptr, *v = nullptr, *a = nullptr, *b = nullptr;
  const void* dy = nullptr;                 // backward: dL/dy
  void* y = nullptr;                        // forward: the output
  float* saved = nullptr;                   // [B, H, chunks, N, N]: S at each chunk start (null: keep none)
  const float* s0 = nullptr;                // initial state [., H, N, N]; null: 0
  int64_t s0_batch_stride = 0;              // 0: one state for the whole batch
  float* ds0 = nullptr;                     // backward: dL/dS_0 [B, H, N, N], or null
  float* sT = nullptr;                      // forward: receives the final state [B, H, N, N], or null
  const float* dsT = nullptr;               // backward: dL/dS_T [B, H, N, N] (G starts there), or null: 0
  const bool* reset = nullptr;              // [B, T]: restart from s_reset before step t (wkv7_reset), or null
  const float* s_reset = nullptr;           // the state restarted from [., H, N, N]
  int64_t s_reset_batch_stride = 0;
  float* ds_reset = nullptr;                // backward: dL/ds_reset per sample [B, H, N, N] (with reset)
  void *dr = nullptr, *dw = nullptr, *dk = nullptr, *dv = nullptr, *da = nullptr, *db = nullptr;
  int64_t chunks() const { return (T + kChunk - 1) / kChunk; }
  bool restarts(int64_t bi, int64_t t) const { return reset != nullptr && reset[bi * T + t]; }
  const float* restart_state(int64_t bi, int64_t h) const { return s_reset + bi * s_reset_batch_stride + h * N * N; }
};

// Floats of scratch memory one thread needs.
inline int64_t workspace_floats(int64_t N) { return (kChunk + 2) * N * N + (8 * kChunk + 8) * N; }

// The (batch, head) pairs [begin, end) of the forward / backward, with `workspace` of
// workspace_floats(N) floats. Defined once per instruction set (wkv7_fast_isa.inc).
#define RWKV7_WKV7_FAST_DECLARE(isa)                                                          \
  namespace isa {                                                                             \
  void forward(const Problem& p, int64_t begin, int64_t end, float* workspace);               \
  void backward(const Problem& p, int64_t begin, int64_t end, float* workspace);              \
  }
RWKV7_WKV7_FAST_DECLARE(baseline)
RWKV7_WKV7_FAST_DECLARE(avx2)
RWKV7_WKV7_FAST_DECLARE(avx512)
#undef RWKV7_WKV7_FAST_DECLARE

// The whole forward / backward, parallel over (batch, head) with at::parallel_for, on `isa`
// ("baseline", "avx2", "avx512"), or by default the best one here (the environment's
// RWKV7_CPU_ISA, when set, instead).
void run_forward(const Problem& p, const char* isa = nullptr);
void run_backward(const Problem& p, const char* isa = nullptr);
const char* isa_in_use();
// How many threads an at::parallel_for over `items` pairs ran on here, as run_forward's does:
// at::get_num_threads() (at most `items`) when this library is built with OpenMP, 1 without.
int64_t threads_over(int64_t items);
bool isa_available(const char* isa);

}  // namespace rwkv7_ops::wkv7_fast
