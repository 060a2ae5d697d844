// kk_pre on the CPU, the slow, obviously right reference the CUDA kernels are tested against.
// Everything the time mix computes between its projections and the WKV-7 scan, per head of N
// channels (C = H N), with k, a_in [B, T, C] and a0, k_k, k_a [C]:
//
//   a      = sigmoid(a0 + a_in)                      the in-context learning rate
//   u      = k * k_k ;  kk = u / max(|u|_head, 1e-12)  (F.normalize over each head)
//   k_out  = k * (1 + (a - 1) * k_a)
//   neg_kk = -kk ;  kk_a = kk * a                     the scan's a and b
//
// Backward, with the three output gradients dk_out, dneg, dkka:
//   dkk  = dkka * a - dneg
//   du   = (dkk - kk <dkk, kk>_head) / |u|            (= dkk / 1e-12 where the norm is clamped)
//   da   = dk_out * k * k_a + dkka * kk ;  da_in = da * a (1 - a) ;  da0 = sum_{b,t} da_in
//   dk   = dk_out * (1 + (a - 1) * k_a) + du * k_k
//   dk_k = sum_{b,t} du * k ;  dk_a = sum_{b,t} dk_out * k * (a - 1)
//
// float32 and bfloat16 run the one-pass loops of kk_pre_cpu_loops.inc instead
// (ops/cpu_kernels/fused_cpu.h); float64 runs the composite, the reference.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../cpu_kernels/fused_cpu.h"

#include "kk_pre_check.h"

namespace rwkv7_ops {
namespace {

fused_cpu::KkPre problem(const at::Tensor& k, const at::Tensor& a_in, const at::Tensor& a0, const at::Tensor& k_k,
                         const at::Tensor& k_a, int64_t H) {
  fused_cpu::KkPre p;
  p.rows = k.size(0) * k.size(1), p.C = k.size(2), p.H = H, p.bf16 = k.scalar_type() == at::kBFloat16;
  p.k = fused_cpu::in(k), p.a_in = fused_cpu::in(a_in), p.a0 = fused_cpu::in(a0);
  p.k_k = fused_cpu::in(k_k), p.k_a = fused_cpu::in(k_a);
  return p;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> kk_pre_fast(const at::Tensor& k, const at::Tensor& a_in,
                                                           const at::Tensor& a0, const at::Tensor& k_k,
                                                           const at::Tensor& k_a, int64_t H) {
  at::Tensor k_out = at::empty_like(k), neg_kk = at::empty_like(k), kk_a = at::empty_like(k);
  fused_cpu::KkPre p = problem(k, a_in, a0, k_k, k_a, H);
  p.k_out = fused_cpu::out(k_out), p.neg_kk = fused_cpu::out(neg_kk), p.kk_a = fused_cpu::out(kk_a);
  fused_cpu::run_blocks(fused_cpu::kernels().kk_pre, p, fused_cpu::row_blocks(p.rows), fused_cpu::row_scratch(p.C));
  return {k_out, neg_kk, kk_a};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> kk_pre_backward_fast(
    const at::Tensor& k, const at::Tensor& a_in, const at::Tensor& a0, const at::Tensor& k_k, const at::Tensor& k_a,
    int64_t H, const at::Tensor& dk_out, const at::Tensor& dneg, const at::Tensor& dkka) {
  at::Tensor dk = at::empty_like(k), da_in = at::empty_like(k);
  fused_cpu::KkPre p = problem(k, a_in, a0, k_k, k_a, H);
  const int64_t blocks = fused_cpu::row_blocks(p.rows);
  at::Tensor partial = at::empty({blocks, 3, p.C}, k.options().dtype(at::kFloat));
  p.dk_out = fused_cpu::in(dk_out), p.dneg_kk = fused_cpu::in(dneg), p.dkk_a = fused_cpu::in(dkka);
  p.dk = fused_cpu::out(dk), p.da_in = fused_cpu::out(da_in), p.partial = partial.mutable_data_ptr<float>();
  fused_cpu::run_blocks(fused_cpu::kernels().kk_pre_backward, p, blocks, fused_cpu::row_scratch(p.C));
  const at::Tensor sums = fused_cpu::sum_of_blocks(partial).view({3, p.C}).to(k.scalar_type());
  return {dk, da_in, sums[0].clone(), sums[1].clone(), sums[2].clone()};  // (outputs may not alias)
}

struct Recomputed {
  at::Tensor a, u, norm, kk;  // u, norm, kk per head: [B, T, H, N] and [B, T, H, 1]
};

Recomputed recompute(const at::Tensor& k, const at::Tensor& a_in, const at::Tensor& a0, const at::Tensor& k_k,
                     int64_t H) {
  const int64_t B = k.size(0), T = k.size(1), C = k.size(2);
  Recomputed r;
  r.a = at::sigmoid(a0 + a_in);
  r.u = (k * k_k).view({B, T, H, C / H});
  r.norm = r.u.norm(2, -1, true);
  r.kk = (r.u / r.norm.clamp_min(1e-12)).view({B, T, C});
  return r;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> kk_pre_cpu(const at::Tensor& k, const at::Tensor& a_in,
                                                          const at::Tensor& a0, const at::Tensor& k_k,
                                                          const at::Tensor& k_a, int64_t H) {
  check_kk_pre("rwkv7::kk_pre", k, a_in, a0, k_k, k_a, H);
  if (fused_cpu::runs_fast(k))
    return kk_pre_fast(k.contiguous(), a_in.contiguous(), a0.contiguous(), k_k.contiguous(), k_a.contiguous(), H);
  const Recomputed r = recompute(k, a_in, a0, k_k, H);
  return {k * (1 + (r.a - 1) * k_a), -r.kk, r.kk * r.a};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> kk_pre_backward_cpu(
    const at::Tensor& k, const at::Tensor& a_in, const at::Tensor& a0, const at::Tensor& k_k, const at::Tensor& k_a,
    int64_t H, const at::Tensor& dk_out, const at::Tensor& dneg, const at::Tensor& dkka) {
  check_kk_pre("rwkv7::kk_pre_backward", k, a_in, a0, k_k, k_a, H);
  check_kk_pre_output_grads("rwkv7::kk_pre_backward", k, dk_out, dneg, dkka);
  if (fused_cpu::runs_fast(k)) {
    auto same = [&](const at::Tensor& g) { return g.to(k.scalar_type()).contiguous(); };
    return kk_pre_backward_fast(k.contiguous(), a_in.contiguous(), a0.contiguous(), k_k.contiguous(),
                                k_a.contiguous(), H, same(dk_out), same(dneg), same(dkka));
  }
  const int64_t B = k.size(0), T = k.size(1), C = k.size(2);
  const Recomputed r = recompute(k, a_in, a0, k_k, H);
  const at::Tensor dkk = (dkka * r.a - dneg).view({B, T, H, C / H});
  const at::Tensor kk = r.kk.view({B, T, H, C / H});
  const at::Tensor clamped = r.norm <= 1e-12;
  const at::Tensor du = at::where(clamped, dkk / 1e-12, (dkk - kk * (dkk * kk).sum(-1, true)) / r.norm)
                            .view({B, T, C});
  const at::Tensor da_in = (dk_out * k * k_a + dkka * r.kk) * r.a * (1 - r.a);
  const at::Tensor dk = dk_out * (1 + (r.a - 1) * k_a) + du * k_k;
  auto per_channel = [](const at::Tensor& t) { return t.sum(at::IntArrayRef{0, 1}); };
  return {dk, da_in, per_channel(da_in), per_channel(du * k), per_channel(dk_out * k * (r.a - 1))};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CPU, m) {
  m.impl("kk_pre", &kk_pre_cpu);
  m.impl("kk_pre_backward", &kk_pre_backward_cpu);
}

}  // namespace rwkv7_ops
