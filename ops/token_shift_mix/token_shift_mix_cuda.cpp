// token_shift_mix's CUDA kernels as the op's CUDA implementation: checks, allocation, launch on
// the current stream (kernels in token_shift_mix_kernels.cuh).
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../cuda_op_util.h"
#include "token_shift_mix_check.h"
#include "token_shift_mix_cuda_kernels.h"

namespace rwkv7_ops {
namespace {

at::Tensor token_shift_mix_cuda(const at::Tensor& x, const at::Tensor& mix) {
  const char* op = "rwkv7::token_shift_mix (CUDA)";
  check_token_shift_mix(op, x, mix);
  const auto dtype = cuda_kernel_dtype(x, op, "x");
  c10::cuda::CUDAGuard guard(x.device());
  const int B = int(x.size(0)), T = int(x.size(1)), C = int(x.size(2)), n = int(mix.size(0));
  const at::Tensor X = x.contiguous(), M = mix.contiguous();
  at::Tensor out = at::empty({n, B, T, C}, X.options());
  check_cuda_launch(rwkv7_cuda::token_shift_mix_forward(dtype, B, T, C, n, X.data_ptr(), M.data_ptr(),
                                                        out.data_ptr(), at::cuda::getCurrentCUDAStream()),
                    op);
  return out;
}

std::tuple<at::Tensor, at::Tensor> token_shift_mix_backward_cuda(const at::Tensor& x, const at::Tensor& mix,
                                                                 const at::Tensor& dout) {
  const char* op = "rwkv7::token_shift_mix_backward (CUDA)";
  check_token_shift_mix(op, x, mix);
  const auto dtype = cuda_kernel_dtype(x, op, "x");
  c10::cuda::CUDAGuard guard(x.device());
  const int B = int(x.size(0)), T = int(x.size(1)), C = int(x.size(2)), n = int(mix.size(0));
  check_token_shift_mix_dout(op, x, mix, dout);
  const at::Tensor X = x.contiguous(), M = mix.contiguous(), DO = dout.to(x.scalar_type()).contiguous();
  at::Tensor dx = at::empty_like(X), dmix = at::empty_like(M);
  at::Tensor partial = at::empty({rwkv7_cuda::token_shift_mix_partial_floats(B, T, C, n)}, X.options().dtype(at::kFloat));
  check_cuda_launch(rwkv7_cuda::token_shift_mix_backward(dtype, B, T, C, n, X.data_ptr(), M.data_ptr(), DO.data_ptr(),
                                                         dx.data_ptr(), dmix.data_ptr(), partial.data_ptr<float>(),
                                                         at::cuda::getCurrentCUDAStream()),
                    op);
  return {dx, dmix};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CUDA, m) {
  m.impl("token_shift_mix", &token_shift_mix_cuda);
  m.impl("token_shift_mix_backward", &token_shift_mix_backward_cuda);
}

}  // namespace rwkv7_ops
