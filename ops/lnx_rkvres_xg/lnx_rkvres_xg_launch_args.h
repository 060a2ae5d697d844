// lnx_rkvres_xg's launcher arguments as structs: the inputs, the output gradient and the
// gradients, a pointer per tensor (y, r, k, v, g and their gradients [B*T, C], r_k [H, N], ln_w,
// ln_b [C]; all contiguous of the launch's dtype). No includes: the entry points
// (lnx_rkvres_xg_cuda_kernels.h), the kernels (lnx_rkvres_xg_kernels.cuh) and the CPU emulation
// all read it.
#pragma once

namespace rwkv7_cuda {

struct LnxRkvresXgInputs {
  const void* y;
  const void* r;
  const void* k;
  const void* v;
  const void* r_k;
  const void* g;
  const void* ln_w;
  const void* ln_b;
};

struct LnxRkvresXgGrads {
  void* dy;
  void* dr;
  void* dk;
  void* dv;
  void* dr_k;
  void* dg;
  void* dln_w;
  void* dln_b;
};

struct LnxRkvresXgForwardArgs {
  LnxRkvresXgInputs in;
  void* out;
};

struct LnxRkvresXgBackwardArgs {
  LnxRkvresXgInputs in;
  const void* dout;  // the output gradient
  LnxRkvresXgGrads grad;
};

}  // namespace rwkv7_cuda
