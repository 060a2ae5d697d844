// WKV-7's launcher arguments as structs: the inputs, the saved tensors, the output gradient and
// the gradients (shapes and layouts in wkv7_cuda_kernels.h). No includes: the entry points
// (wkv7_cuda_kernels.h), the kernels (wkv7_kernels.cuh) and the CPU emulation all read it.
#pragma once

namespace rwkv7_cuda {

// r, w, k, v, a, b: [B, T, H, N] of the launch's dtype; w is the raw decay input x for
// DecayInput::kRaw.
struct Wkv7Inputs {
  const void* r;
  const void* w;
  const void* k;
  const void* v;
  const void* a;
  const void* b;
};

struct Wkv7Grads {
  void* dr;
  void* dw;  // of whichever decay input
  void* dk;
  void* dv;
  void* da;
  void* db;
};

// wkv7_reset (packed documents): the state restarts from s_reset before every step t with
// reset[b * T + t] (bool [B, T]); null: no restarts.
struct Wkv7Restarts {
  const bool* reset = nullptr;
  const float* s_reset = nullptr;  // [B, H, N, N], or [H, N, N] with batch stride 0
  long s_reset_batch_stride = 0;
  float* ds_reset = nullptr;       // backward: receives dL/ds_reset per sample [B, H, N, N]
};

struct Wkv7ForwardArgs {
  Wkv7Inputs in;
  void* y;
  float* s = nullptr;          // saved for the backward: both null for inference
  float* sa = nullptr;
  const float* s0 = nullptr;   // the initial state (null: S starts at 0)
  long s0_batch_stride = 0;
  float* sT = nullptr;         // null, or receives the final state [B, H, N, N] (state passing)
  Wkv7Restarts restarts;
};

struct Wkv7BackwardArgs {
  Wkv7Inputs in;
  const void* dy;              // the output gradient
  const float* s;              // what the forward saved
  const float* sa;
  Wkv7Grads grad;
  float* ds0 = nullptr;        // null, or dL/dS_0 per sample
  const float* dsT = nullptr;  // null (G starts at 0), or dL/dS_T [B, H, N, N] (state passing)
  // With restarts: the backward recomputes the state before a restart from the chunk's start,
  // which for the first chunk is s0 (null: 0).
  Wkv7Restarts restarts;
  const float* s0 = nullptr;
  long s0_batch_stride = 0;
};

}  // namespace rwkv7_cuda
