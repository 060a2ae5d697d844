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
//
// float32 and bfloat16 run the one-pass loops of lnx_rkvres_xg_cpu_loops.inc instead
// (ops/cpu_kernels/fused_cpu.h); float64 runs the composite, the reference.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../cpu_kernels/fused_cpu.h"

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

fused_cpu::LnxRkvresXg problem(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& r_k, const at::Tensor& g, const at::Tensor& ln_w,
                               const at::Tensor& ln_b, int64_t H, double eps) {
  fused_cpu::LnxRkvresXg p;
  p.rows = y.size(0) * y.size(1), p.C = y.size(2), p.H = H, p.eps = static_cast<float>(eps);
  TORCH_CHECK(p.eps > 0, "rwkv7::lnx_rkvres_xg: argument 'eps' = ", eps, " is 0 in float32, where the op computes");
  p.bf16 = y.scalar_type() == at::kBFloat16;
  p.y = fused_cpu::in(y), p.r = fused_cpu::in(r), p.k = fused_cpu::in(k), p.v = fused_cpu::in(v);
  p.r_k = fused_cpu::in(r_k), p.g = fused_cpu::in(g), p.ln_w = fused_cpu::in(ln_w), p.ln_b = fused_cpu::in(ln_b);
  return p;
}

at::Tensor lnx_rkvres_xg_fast(const fused_cpu::LnxRkvresXg& inputs, const at::Tensor& y) {
  at::Tensor out = at::empty_like(y);
  fused_cpu::LnxRkvresXg p = inputs;
  p.out = fused_cpu::out(out);
  fused_cpu::run_blocks(fused_cpu::kernels().lnx_rkvres_xg, p, fused_cpu::row_blocks(p.rows),
                        fused_cpu::row_scratch(p.C));
  return out;
}

Grads lnx_rkvres_xg_backward_fast(const fused_cpu::LnxRkvresXg& inputs, const at::Tensor& y, const at::Tensor& r_k,
                                  const at::Tensor& dout) {
  at::Tensor dy = at::empty_like(y), dr = at::empty_like(y), dk = at::empty_like(y), dv = at::empty_like(y);
  at::Tensor dg = at::empty_like(y);
  fused_cpu::LnxRkvresXg p = inputs;
  const int64_t blocks = fused_cpu::row_blocks(p.rows);
  at::Tensor partial = at::empty({blocks, 3, p.C}, y.options().dtype(at::kFloat));
  p.dout = fused_cpu::in(dout), p.partial = partial.mutable_data_ptr<float>();
  p.dy = fused_cpu::out(dy), p.dr = fused_cpu::out(dr), p.dk = fused_cpu::out(dk), p.dv = fused_cpu::out(dv);
  p.dg = fused_cpu::out(dg);
  fused_cpu::run_blocks(fused_cpu::kernels().lnx_rkvres_xg_backward, p, blocks, fused_cpu::row_scratch(p.C));
  const at::Tensor sums = fused_cpu::sum_of_blocks(partial).view({3, p.C}).to(y.scalar_type());
  return {dy, dr, dk, dv, sums[0].reshape(r_k.sizes()).clone(), dg, sums[1].clone(), sums[2].clone()};  // (no aliases)
}

at::Tensor lnx_rkvres_xg_cpu(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& r_k, const at::Tensor& g, const at::Tensor& ln_w,
                             const at::Tensor& ln_b, int64_t H, double eps) {
  check_lnx_rkvres_xg("rwkv7::lnx_rkvres_xg", y, r, k, v, r_k, g, ln_w, ln_b, H, eps);
  if (fused_cpu::runs_fast(y)) {
    const at::Tensor c[] = {y.contiguous(),   r.contiguous(), k.contiguous(),    v.contiguous(),
                            r_k.contiguous(), g.contiguous(), ln_w.contiguous(), ln_b.contiguous()};
    return lnx_rkvres_xg_fast(problem(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], H, eps), c[0]);
  }
  const Recomputed c = recompute(y, r, k, v, r_k, ln_w, ln_b, H, eps);
  return c.z.reshape(y.sizes()) * g;
}

Grads lnx_rkvres_xg_backward_cpu(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& r_k, const at::Tensor& g, const at::Tensor& ln_w,
                                 const at::Tensor& ln_b, int64_t H, double eps, const at::Tensor& dout) {
  const char* op = "rwkv7::lnx_rkvres_xg_backward";
  check_lnx_rkvres_xg(op, y, r, k, v, r_k, g, ln_w, ln_b, H, eps);
  check_lnx_rkvres_xg_dout(op, y, dout);
  if (fused_cpu::runs_fast(y)) {
    const at::Tensor c[] = {y.contiguous(),   r.contiguous(), k.contiguous(),    v.contiguous(),
                            r_k.contiguous(), g.contiguous(), ln_w.contiguous(), ln_b.contiguous()};
    return lnx_rkvres_xg_backward_fast(problem(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], H, eps), c[0], r_k,
                                       dout.to(y.scalar_type()).contiguous());
  }
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
