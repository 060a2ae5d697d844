// vres_gate on the Meta device: shapes and dtypes only, no data (meta models, opcheck,
// torch.compile). The same checks as the CPU and CUDA kernels (vres_gate_check.h).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <tuple>

#include "vres_gate_check.h"

namespace rwkv7_ops {
namespace {

at::Tensor vres_gate_meta(const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in,
                          const at::Tensor& v0) {
  check_vres_gate("rwkv7::vres_gate (Meta)", v, v_first, v_in, v0);
  return at::empty(v.sizes(), v.options());  // [B, T, C]
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> vres_gate_backward_meta(
    const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in, const at::Tensor& v0,
    const at::Tensor& dout) {
  const char* op = "rwkv7::vres_gate_backward (Meta)";
  check_vres_gate(op, v, v_first, v_in, v0);
  check_vres_gate_dout(op, v, dout);
  auto like = [](const at::Tensor& t) { return at::empty(t.sizes(), t.options()); };
  return {like(v), like(v), like(v), like(v0)};  // dv, dv_first, dv_in [B, T, C]; dv0 [C]
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, Meta, m) {
  m.impl("vres_gate", &vres_gate_meta);
  m.impl("vres_gate_backward", &vres_gate_backward_meta);
}

}  // namespace rwkv7_ops
