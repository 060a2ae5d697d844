// relu_square on the CPU, the reference for its CUDA kernels: the channel mix's activation.
//   out = relu(x)^2 ;  dx = 2 relu(x) dout
// float32 and bfloat16 run the loops of relu_square_cpu_loops.inc (ops/cpu_kernels/fused_cpu.h);
// float64 the composite, the reference.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../cpu_kernels/fused_cpu.h"

namespace rwkv7_ops {
namespace {

int64_t element_blocks(int64_t numel) {
  return (numel + fused_cpu::kElementsPerBlock - 1) / fused_cpu::kElementsPerBlock;
}

at::Tensor relu_square_fast(const at::Tensor& x) {
  at::Tensor out = at::empty_like(x);
  fused_cpu::ReluSquare p;
  p.numel = x.numel(), p.bf16 = x.scalar_type() == at::kBFloat16;
  p.x = fused_cpu::in(x), p.out = fused_cpu::out(out);
  fused_cpu::run_blocks(fused_cpu::kernels().relu_square, p, element_blocks(p.numel),
                        fused_cpu::kReluScratchRows * fused_cpu::kElementsPerBlock);
  return out;
}

at::Tensor relu_square_backward_fast(const at::Tensor& x, const at::Tensor& dout) {
  at::Tensor dx = at::empty_like(x);
  fused_cpu::ReluSquare p;
  p.numel = x.numel(), p.bf16 = x.scalar_type() == at::kBFloat16;
  p.x = fused_cpu::in(x), p.dout = fused_cpu::in(dout), p.dx = fused_cpu::out(dx);
  fused_cpu::run_blocks(fused_cpu::kernels().relu_square_backward, p, element_blocks(p.numel),
                        fused_cpu::kReluScratchRows * fused_cpu::kElementsPerBlock);
  return dx;
}

at::Tensor relu_square_cpu(const at::Tensor& x) {
  if (fused_cpu::runs_fast(x)) return relu_square_fast(x.contiguous());
  return at::relu(x).square();
}

at::Tensor relu_square_backward_cpu(const at::Tensor& x, const at::Tensor& dout) {
  TORCH_CHECK(dout.sizes() == x.sizes(), "rwkv7::relu_square_backward: argument 'dout' must be shaped like 'x' ",
              x.sizes(), ", got ", dout.sizes());
  if (fused_cpu::runs_fast(x)) return relu_square_backward_fast(x.contiguous(), dout.to(x.scalar_type()).contiguous());
  return 2 * at::relu(x) * dout;
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CPU, m) {
  m.impl("relu_square", &relu_square_cpu);
  m.impl("relu_square_backward", &relu_square_backward_cpu);
}

}  // namespace rwkv7_ops
