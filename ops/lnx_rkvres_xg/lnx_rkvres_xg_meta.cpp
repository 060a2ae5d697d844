// lnx_rkvres_xg on the Meta device: shapes and dtypes only, no data (meta models, opcheck,
// torch.compile). The same checks as the CPU and CUDA kernels (lnx_rkvres_xg_check.h).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <tuple>

#include "lnx_rkvres_xg_check.h"

namespace rwkv7_ops {
namespace {

using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                         at::Tensor>;  // dy, dr, dk, dv, dr_k, dg, dln_w, dln_b

at::Tensor lnx_rkvres_xg_meta(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& r_k, const at::Tensor& g, const at::Tensor& ln_w,
                              const at::Tensor& ln_b, int64_t H, double eps) {
  check_lnx_rkvres_xg("rwkv7::lnx_rkvres_xg (Meta)", y, r, k, v, r_k, g, ln_w, ln_b, H, eps);
  return at::empty(y.sizes(), y.options());  // [B, T, C]
}

Grads lnx_rkvres_xg_backward_meta(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k,
                                  const at::Tensor& v, const at::Tensor& r_k, const at::Tensor& g,
                                  const at::Tensor& ln_w, const at::Tensor& ln_b, int64_t H, double eps,
                                  const at::Tensor& dout) {
  const char* op = "rwkv7::lnx_rkvres_xg_backward (Meta)";
  check_lnx_rkvres_xg(op, y, r, k, v, r_k, g, ln_w, ln_b, H, eps);
  check_lnx_rkvres_xg_dout(op, y, dout);
  auto like = [](const at::Tensor& t) { return at::empty(t.sizes(), t.options()); };
  return {like(y), like(y), like(y), like(y), like(r_k), like(y), like(ln_w), like(ln_b)};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, Meta, m) {
  m.impl("lnx_rkvres_xg", &lnx_rkvres_xg_meta);
  m.impl("lnx_rkvres_xg_backward", &lnx_rkvres_xg_backward_meta);
}

}  // namespace rwkv7_ops
