// kk_pre's launcher arguments as structs: the inputs, the outputs, the output gradients and the
// gradients, each a pointer per tensor (k, a_in and the [B*T, C] tensors, a0, k_k, k_a and their
// gradients [C]; all contiguous of the launch's dtype). No includes: the entry points
// (kk_pre_cuda_kernels.h), the kernels (kk_pre_kernels.cuh) and the CPU emulation all read it.
#pragma once

namespace rwkv7_cuda {

struct KkPreInputs {
  const void* k;
  const void* a_in;
  const void* a0;
  const void* k_k;
  const void* k_a;
};

struct KkPreOutputs {
  void* k_out;
  void* neg_kk;
  void* kk_a;
};

struct KkPreOutputGrads {
  const void* dk_out;
  const void* dneg_kk;
  const void* dkk_a;
};

struct KkPreGrads {
  void* dk;
  void* da_in;
  void* da0;
  void* dk_k;
  void* dk_a;
};

struct KkPreForwardArgs {
  KkPreInputs in;
  KkPreOutputs out;
};

struct KkPreBackwardArgs {
  KkPreInputs in;
  KkPreOutputGrads dout;
  KkPreGrads grad;
};

}  // namespace rwkv7_cuda
