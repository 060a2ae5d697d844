// relu_square on the CPU, the reference for its CUDA kernels: the channel mix's activation.
//   out = relu(x)^2 ;  dx = 2 relu(x) dout
#include <ATen/ATen.h>
#include <torch/library.h>

namespace rwkv7_ops {
namespace {

at::Tensor relu_square_cpu(const at::Tensor& x) { return at::relu(x).square(); }

at::Tensor relu_square_backward_cpu(const at::Tensor& x, const at::Tensor& dout) { return 2 * at::relu(x) * dout; }

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CPU, m) {
  m.impl("relu_square", &relu_square_cpu);
  m.impl("relu_square_backward", &relu_square_backward_cpu);
}

}  // namespace rwkv7_ops
