// vres_gate's launcher arguments as structs: the inputs, the output gradient and the gradients, a
// pointer per tensor (v, v_first, v_in and their gradients [B*T, C], v0 and dv0 [C]; all
// contiguous of the launch's dtype). No includes: the entry points (vres_gate_cuda_kernels.h),
// the kernels (vres_gate_kernels.cuh) and the CPU emulation all read it.
#pragma once

namespace rwkv7_cuda {

struct VresGateInputs {
  const void* v;
  const void* v_first;
  const void* v_in;
  const void* v0;
};

struct VresGateGrads {
  void* dv;
  void* dv_first;
  void* dv_in;
  void* dv0;
};

struct VresGateForwardArgs {
  VresGateInputs in;
  void* out;
};

struct VresGateBackwardArgs {
  VresGateInputs in;
  const void* dout;  // the output gradient
  VresGateGrads grad;
};

}  // namespace rwkv7_cuda
