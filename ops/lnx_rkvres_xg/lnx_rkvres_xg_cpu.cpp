// lnx_rkvres_xg on the CPU, the slow, obviously right reference the CUDA kernels are tested against.
// The tail of the time mix after the WKV-7 scan, per row (b, t) and head of N channels (C = H N),
// with y, r, k, v, g [B, T, C], r_k [H, N] and ln_w, ln_b [C]:
//
//   mu   = mean_n y ;  var = mean_n (y - mu)^2 ;  rstd = 1 / sqrt(var + eps)
//   yhat = (y - mu) * rstd                        (ln_x: GroupNorm with one group per head)
//   rk   = sum_n r * k * r_k                      (the bonus coefficient)
//   z    = yhat * ln_w + ln_b + rk * v
//   out  = z * g
//
// Backward, with the output gradient dout:
//   dz    = dout * g ;  dg = dout * z
//   dyhat = dz * ln_w ;  dy = rstd * (dyhat - mean_n dyhat - yhat * mean_n (dyhat * yhat))
//   drk   = sum_n dz * v ;  dv = dz * rk ;  dr = drk * k * r_k ;  dk = drk * r * r_k
//   dr_k  = sum_{b,t} drk * r * k ;  dln_w = sum_{b,t} dz * yhat ;  dln_b = sum_{b,t} dz
#include <ATen/ATen.h>
#include <torch/library.h>

#include "lnx_rkvres_xg_check.h"

namespace rwkv7_ops {
namespace {

using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                         at::Tensor>;  // dy, dr, dk, dv, dr_k, dg, dln_w, dln_b

at::Tensor heads(const at::Tensor& t, int64_t H) {  // [B, T, C] -> [B, T, H, N]
  return t.reshape({t.size(0), t.size(1), H, t.size(2) / H});
}

struct Recomputed {
  at::Tensor yhat, rstd, rk, z;  // per head: [B, T, H, N], [B, T, H, 1], [B, T, H, 1], [B, T, H, N]
};

Recomputed recompute(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                     const at::Tensor& r_k, const at::Tensor& ln_w, const at::Tensor& ln_b, int64_t H, double eps) {
  const at::Tensor y4 = heads(y, H);
  const at::Tensor centred = y4 - y4.mean(-1, true);
  Recomputed c;
  c.rstd = at::rsqrt(centred.square().mean(-1, true) + eps);
  c.yhat = centred * c.rstd;
  c.rk = (heads(r, H) * heads(k, H) * r_k).sum(-1, true);
  c.z = c.yhat * ln_w.reshape(r_k.sizes()) + ln_b.reshape(r_k.sizes()) + c.rk * heads(v, H);
  return c;
}

at::Tensor lnx_rkvres_xg_cpu(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& r_k, const at::Tensor& g, const at::Tensor& ln_w,
                             const at::Tensor& ln_b, int64_t H, double eps) {
  check_lnx_rkvres_xg("rwkv7::lnx_rkvres_xg", y, r, k, v, r_k, g, ln_w, ln_b, H, eps);
  const Recomputed c = recompute(y, r, k, v, r_k, ln_w, ln_b, H, eps);
  return c.z.reshape(y.sizes()) * g;
}

Grads lnx_rkvres_xg_backward_cpu(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& r_k, const at::Tensor& g, const at::Tensor& ln_w,
                                 const at::Tensor& ln_b, int64_t H, double eps, const at::Tensor& dout) {
  const char* op = "rwkv7::lnx_rkvres_xg_backward";
  check_lnx_rkvres_xg(op, y, r, k, v, r_k, g, ln_w, ln_b, H, eps);
  check_lnx_rkvres_xg_dout(op, y, dout);
  const Recomputed c = recompute(y, r, k, v, r_k, ln_w, ln_b, H, eps);
  const at::Tensor r4 = heads(r, H), k4 = heads(k, H);
  const at::Tensor dz = heads(dout * g, H);
  const at::Tensor dyhat = dz * ln_w.reshape(r_k.sizes());
  const at::Tensor dy = c.rstd * (dyhat - dyhat.mean(-1, true) - c.yhat * (dyhat * c.yhat).mean(-1, true));
  const at::Tensor drk = (dz * heads(v, H)).sum(-1, true);
  auto flat = [&](const at::Tensor& t) { return t.reshape(y.sizes()); };  // [B, T, H, N] -> [B, T, C]
  auto per_channel = [](const at::Tensor& t) { return t.sum(at::IntArrayRef{0, 1}); };  // [B, T, H, N] -> [H, N]
  return {flat(dy),
          flat(drk * k4 * r_k),
          flat(drk * r4 * r_k),
          flat(dz * c.rk),
          per_channel(drk * r4 * k4),
          dout * flat(c.z),
          per_channel(dz * c.yhat).reshape(ln_w.sizes()),
          per_channel(dz).reshape(ln_b.sizes())};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CPU, m) {
  m.impl("lnx_rkvres_xg", &lnx_rkvres_xg_cpu);
  m.impl("lnx_rkvres_xg_backward", &lnx_rkvres_xg_backward_cpu);
}

}  // namespace rwkv7_ops
