// vres_gate on the CPU, the reference for its CUDA kernels: the value residual of layers > 0,
// with v, v_first, v_in [B, T, C] and v0 [C]:
//
//   s = sigmoid(v0 + v_in) ;  out = v + (v_first - v) * s
//
// Backward, with dout:
//   dv = dout (1 - s) ;  dv_first = dout s ;  dv_in = dout (v_first - v) s (1 - s) ;  dv0 = sum_{b,t} dv_in
//
// float32 and bfloat16 run the one-pass loops of vres_gate_cpu_loops.inc instead
// (ops/cpu_kernels/fused_cpu.h); float64 runs the composite, the reference.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../cpu_kernels/fused_cpu.h"

#include "vres_gate_check.h"

namespace rwkv7_ops {
namespace {

fused_cpu::VresGate problem(const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in,
                            const at::Tensor& v0) {
  fused_cpu::VresGate p;
  p.rows = v.size(0) * v.size(1), p.C = v.size(2), p.bf16 = v.scalar_type() == at::kBFloat16;
  p.v = fused_cpu::in(v), p.v_first = fused_cpu::in(v_first), p.v_in = fused_cpu::in(v_in), p.v0 = fused_cpu::in(v0);
  return p;
}

at::Tensor vres_gate_fast(const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in,
                          const at::Tensor& v0) {
  at::Tensor out = at::empty_like(v);
  fused_cpu::VresGate p = problem(v, v_first, v_in, v0);
  p.out = fused_cpu::out(out);
  fused_cpu::run_blocks(fused_cpu::kernels().vres_gate, p, fused_cpu::row_blocks(p.rows), fused_cpu::row_scratch(p.C));
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> vres_gate_backward_fast(
    const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in, const at::Tensor& v0,
    const at::Tensor& dout) {
  at::Tensor dv = at::empty_like(v), dv_first = at::empty_like(v), dv_in = at::empty_like(v);
  fused_cpu::VresGate p = problem(v, v_first, v_in, v0);
  const int64_t blocks = fused_cpu::row_blocks(p.rows);
  at::Tensor partial = at::empty({blocks, p.C}, v.options().dtype(at::kFloat));
  p.dout = fused_cpu::in(dout), p.partial = partial.mutable_data_ptr<float>();
  p.dv = fused_cpu::out(dv), p.dv_first = fused_cpu::out(dv_first), p.dv_in = fused_cpu::out(dv_in);
  fused_cpu::run_blocks(fused_cpu::kernels().vres_gate_backward, p, blocks, fused_cpu::row_scratch(p.C));
  return {dv, dv_first, dv_in, fused_cpu::sum_of_blocks(partial).to(v.scalar_type())};
}

at::Tensor vres_gate_cpu(const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in, const at::Tensor& v0) {
  check_vres_gate("rwkv7::vres_gate", v, v_first, v_in, v0);
  if (fused_cpu::runs_fast(v))
    return vres_gate_fast(v.contiguous(), v_first.contiguous(), v_in.contiguous(), v0.contiguous());
  return v + (v_first - v) * at::sigmoid(v0 + v_in);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> vres_gate_backward_cpu(
    const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in, const at::Tensor& v0,
    const at::Tensor& dout) {
  check_vres_gate("rwkv7::vres_gate_backward", v, v_first, v_in, v0);
  check_vres_gate_dout("rwkv7::vres_gate_backward", v, dout);
  if (fused_cpu::runs_fast(v))
    return vres_gate_backward_fast(v.contiguous(), v_first.contiguous(), v_in.contiguous(), v0.contiguous(),
                                   dout.to(v.scalar_type()).contiguous());
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
