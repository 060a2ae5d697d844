// cross_entropy_l2wrap's CUDA kernels as the op's CUDA implementation (kernels in
// cross_entropy_l2wrap_kernels.cuh). The loss is float32 whatever the logits' dtype.
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../cuda_op_util.h"
#include "cross_entropy_l2wrap_check.h"
#include "cross_entropy_l2wrap_cuda_kernels.h"

namespace rwkv7_ops {
namespace {

at::Tensor cross_entropy_l2wrap_cuda(const at::Tensor& logits, const at::Tensor& targets) {
  const char* op = "rwkv7::cross_entropy_l2wrap (CUDA)";
  check_cross_entropy_l2wrap(op, logits, targets);
  const auto dtype = cuda_kernel_dtype(logits, op, "logits");
  c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor X = logits.contiguous(), Y = targets.contiguous();
  const auto f32 = X.options().dtype(at::kFloat);
  at::Tensor row_loss = at::empty({X.size(0)}, f32), loss = at::empty({}, f32);
  check_cuda_launch(rwkv7_cuda::cross_entropy_l2wrap_forward(
                        dtype, X.size(0), int(X.size(1)), X.data_ptr(),
                        reinterpret_cast<const long long*>(Y.data_ptr<int64_t>()), row_loss.data_ptr<float>(),
                        loss.data_ptr<float>(), at::cuda::getCurrentCUDAStream()),
                    op);
  return loss;
}

at::Tensor cross_entropy_l2wrap_backward_cuda(const at::Tensor& logits, const at::Tensor& targets,
                                              const at::Tensor& dloss) {
  const char* op = "rwkv7::cross_entropy_l2wrap_backward (CUDA)";
  check_cross_entropy_l2wrap(op, logits, targets);
  check_cross_entropy_l2wrap_dloss(op, dloss);
  const auto dtype = cuda_kernel_dtype(logits, op, "logits");
  c10::cuda::CUDAGuard guard(logits.device());
  const at::Tensor X = logits.contiguous(), Y = targets.contiguous(), G = dloss.to(at::kFloat).contiguous();
  at::Tensor dlogits = at::empty_like(X);
  check_cuda_launch(rwkv7_cuda::cross_entropy_l2wrap_backward(
                        dtype, X.size(0), int(X.size(1)), X.data_ptr(),
                        reinterpret_cast<const long long*>(Y.data_ptr<int64_t>()), G.data_ptr<float>(),
                        dlogits.data_ptr(), at::cuda::getCurrentCUDAStream()),
                    op);
  return dlogits;
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CUDA, m) {
  m.impl("cross_entropy_l2wrap", &cross_entropy_l2wrap_cuda);
  m.impl("cross_entropy_l2wrap_backward", &cross_entropy_l2wrap_backward_cuda);
}

}  // namespace rwkv7_ops
