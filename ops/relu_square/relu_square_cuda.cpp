// relu_square's CUDA kernels as the op's CUDA implementation (kernels in relu_square_kernels.cuh).
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../cuda_op_util.h"
#include "relu_square_check.h"
#include "relu_square_cuda_kernels.h"

namespace rwkv7_ops {
namespace {

at::Tensor relu_square_cuda(const at::Tensor& x) {
  const char* op = "rwkv7::relu_square (CUDA)";
  const auto dtype = cuda_kernel_dtype(x, op, "x");
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor X = x.contiguous();
  at::Tensor out = at::empty_like(X);
  if (X.numel() == 0) return out;
  check_cuda_launch(rwkv7_cuda::relu_square_forward(dtype, X.numel(), X.data_ptr(), out.data_ptr(),
                                                    at::cuda::getCurrentCUDAStream()),
                    op);
  return out;
}

at::Tensor relu_square_backward_cuda(const at::Tensor& x, const at::Tensor& dout) {
  const char* op = "rwkv7::relu_square_backward (CUDA)";
  check_relu_square_dout(op, x, dout);
  const auto dtype = cuda_kernel_dtype(x, op, "x");
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor X = x.contiguous(), D = dout.to(x.scalar_type()).contiguous();
  at::Tensor dx = at::empty_like(X);
  if (X.numel() == 0) return dx;
  check_cuda_launch(rwkv7_cuda::relu_square_backward(dtype, X.numel(), X.data_ptr(), D.data_ptr(), dx.data_ptr(),
                                                     at::cuda::getCurrentCUDAStream()),
                    op);
  return dx;
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CUDA, m) {
  m.impl("relu_square", &relu_square_cuda);
  m.impl("relu_square_backward", &relu_square_backward_cuda);
}

}  // namespace rwkv7_ops
