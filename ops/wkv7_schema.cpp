// The one schema file of the rwkv7 op library (PyTorch's custom-op recipe):
// every operator is declared here; kernels live in one file per dispatch key.
//
//   wkv7(r, w, k, v, a, b) -> y                        differentiable (Autograd key)
//   wkv7_forward(...)      -> (y, saved_state, saved_sa)  what backward needs
//   wkv7_backward(..., dy, saved_state, saved_sa) -> (dr, dw, dk, dv, da, db)
//
// All tensors are [B, T, H, N]. The meaning of saved_state / saved_sa is private to
// each device's kernels (the CPU keeps chunk-start states, CUDA the seed's chunk-end
// states plus S·a), so the backward op must run on the device that ran the forward.
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
}
