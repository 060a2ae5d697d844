// token_shift_mix on the CPU, the slow, obviously right reference the CUDA kernels are tested
// against. With x [B, T, C] and mix [n, C] (n lerp coefficients, 6 for the time mix, 1 for the
// channel mix):
//
//   xx[b,t] = x[b,t-1] - x[b,t]            (x[b,-1] = 0: the token shift)
//   out[j,b,t] = x[b,t] + xx[b,t] * mix[j]
//
// Backward, with dout [n, B, T, C] and dxx[b,t] = sum_j dout[j,b,t] * mix[j]:
//   dx[b,t]   = sum_j dout[j,b,t] - dxx[b,t] + dxx[b,t+1]     (dxx[b,T] = 0)
//   dmix[j]   = sum_{b,t} dout[j,b,t] * xx[b,t]
//
// float32 and bfloat16 run the one-pass loops of token_shift_mix_cpu_loops.inc instead
// (ops/cpu_kernels/fused_cpu.h); float64 runs the composite, the reference.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../cpu_kernels/fused_cpu.h"
#include "token_shift_mix_check.h"

namespace rwkv7_ops {
namespace {

fused_cpu::TokenShiftMix problem(const at::Tensor& x, const at::Tensor& mix) {
  fused_cpu::TokenShiftMix p;
  p.B = x.size(0), p.T = x.size(1), p.C = x.size(2), p.n = mix.size(0);
  p.bf16 = x.scalar_type() == at::kBFloat16;
  p.x = fused_cpu::in(x), p.mix = fused_cpu::in(mix);
  return p;
}

at::Tensor token_shift_mix_fast(const at::Tensor& x, const at::Tensor& mix) {
  at::Tensor out = at::empty({mix.size(0), x.size(0), x.size(1), x.size(2)}, x.options());
  fused_cpu::TokenShiftMix p = problem(x, mix);
  p.out = fused_cpu::out(out);
  fused_cpu::run_blocks(fused_cpu::kernels().token_shift_mix, p, fused_cpu::row_blocks(p.B * p.T),
                        fused_cpu::row_scratch(p.C));
  return out;
}

std::tuple<at::Tensor, at::Tensor> token_shift_mix_backward_fast(const at::Tensor& x, const at::Tensor& mix,
                                                                 const at::Tensor& dout) {
  at::Tensor dx = at::empty_like(x);
  fused_cpu::TokenShiftMix p = problem(x, mix);
  const int64_t blocks = fused_cpu::row_blocks(p.B * p.T);
  at::Tensor partial = at::empty({blocks, p.n, p.C}, x.options().dtype(at::kFloat));
  p.dout = fused_cpu::in(dout), p.dx = fused_cpu::out(dx), p.partial = partial.mutable_data_ptr<float>();
  fused_cpu::run_blocks(fused_cpu::kernels().token_shift_mix_backward, p, blocks, fused_cpu::row_scratch(p.C));
  return {dx, fused_cpu::sum_of_blocks(partial).view(mix.sizes()).to(x.scalar_type())};
}

at::Tensor shifted_difference(const at::Tensor& x) {  // xx = x[t-1] - x[t]
  return at::constant_pad_nd(x, {0, 0, 1, -1}) - x;
}

at::Tensor token_shift_mix_cpu(const at::Tensor& x, const at::Tensor& mix) {
  check_token_shift_mix("rwkv7::token_shift_mix", x, mix);
  if (fused_cpu::runs_fast(x)) return token_shift_mix_fast(x.contiguous(), mix.contiguous());
  const int64_t n = mix.size(0), C = mix.size(1);
  if (x.size(1) == 0) return at::empty({n, x.size(0), 0, C}, x.options());  // (no step to shift)
  return x.unsqueeze(0) + shifted_difference(x).unsqueeze(0) * mix.view({n, 1, 1, C});
}

std::tuple<at::Tensor, at::Tensor> token_shift_mix_backward_cpu(const at::Tensor& x, const at::Tensor& mix,
                                                                const at::Tensor& dout) {
  check_token_shift_mix("rwkv7::token_shift_mix_backward", x, mix);
  check_token_shift_mix_dout("rwkv7::token_shift_mix_backward", x, mix, dout);
  if (fused_cpu::runs_fast(x))
    return token_shift_mix_backward_fast(x.contiguous(), mix.contiguous(), dout.to(x.scalar_type()).contiguous());
  if (x.size(1) == 0) return {at::empty_like(x), at::zeros_like(mix)};
  const int64_t n = mix.size(0), C = mix.size(1);
  const at::Tensor dxx = (dout * mix.view({n, 1, 1, C})).sum(0);
  const at::Tensor dx = dout.sum(0) - dxx + at::constant_pad_nd(dxx, {0, 0, -1, 1});
  const at::Tensor dmix = (dout * shifted_difference(x).unsqueeze(0)).sum({1, 2});
  return {dx, dmix};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CPU, m) {
  m.impl("token_shift_mix", &token_shift_mix_cpu);
  m.impl("token_shift_mix_backward", &token_shift_mix_backward_cpu);
}

}  // namespace rwkv7_ops
