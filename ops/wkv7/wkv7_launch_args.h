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

struct Wkv7ForwardArgs {
  Wkv7Inputs in;
  void* y;
  float* s = nullptr;          // saved for the backward: both null for inference
  float* sa = nullptr;
  const float* s0 = nullptr;   // the initial state (null: S starts at 0)
  long s0_batch_stride = 0;
  float* sT = nullptr;         // null, or receives the final state [B, H, N, N] (state passing)
};

struct Wkv7BackwardArgs {
  Wkv7Inputs in;
  const void* dy;              // the output gradient
  const float* s;              // what the forward saved
  const float* sa;
  Wkv7Grads grad;
  float* ds0 = nullptr;        // null, or dL/dS_0 per sample
  const float* dsT = nullptr;  // null (G starts at 0), or dL/dS_T [B, H, N, N] (state passing)
};

}  // namespace rwkv7_cuda
