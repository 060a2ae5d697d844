// vres_gate on the CPU, the reference for its CUDA kernels: the value residual of layers > 0,
// with v, v_first, v_in [B, T, C] and v0 [C]:
//
//   s = sigmoid(v0 + v_in) ;  out = v + (v_first - v) * s
//
// Backward, with dout:
//   dv = dout (1 - s) ;  dv_first = dout s ;  dv_in = dout (v_first - v) s (1 - s) ;  dv0 = sum_{b,t} dv_in
#include <ATen/ATen.h>
#include <torch/library.h>

#include "vres_gate_check.h"

namespace rwkv7_ops {
namespace {

at::Tensor vres_gate_cpu(const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in, const at::Tensor& v0) {
  check_vres_gate("rwkv7::vres_gate", v, v_first, v_in, v0);
  return v + (v_first - v) * at::sigmoid(v0 + v_in);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> vres_gate_backward_cpu(
    const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in, const at::Tensor& v0,
    const at::Tensor& dout) {
  check_vres_gate("rwkv7::vres_gate_backward", v, v_first, v_in, v0);
  const at::Tensor s = at::sigmoid(v0 + v_in);
  const at::Tensor dv_in = dout * (v_first - v) * s * (1 - s);
  return {dout * (1 - s), dout * s, dv_in, dv_in.sum(at::IntArrayRef{0, 1})};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CPU, m) {
  m.impl("vres_gate", &vres_gate_cpu);
  m.impl("vres_gate_backward", &vres_gate_backward_cpu);
}

}  // namespace rwkv7_ops
