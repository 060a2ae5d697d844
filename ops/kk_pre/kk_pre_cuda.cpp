// kk_pre's CUDA kernels as the op's CUDA implementation (kernels in kk_pre_kernels.cuh).
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../cuda_op_util.h"
#include "kk_pre_check.h"
#include "kk_pre_cuda_kernels.h"

namespace rwkv7_ops {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> kk_pre_cuda(const at::Tensor& k, const at::Tensor& a_in,
                                                           const at::Tensor& a0, const at::Tensor& k_k,
                                                           const at::Tensor& k_a, int64_t H) {
  const char* op = "rwkv7::kk_pre (CUDA)";
  check_kk_pre(op, k, a_in, a0, k_k, k_a, H);
  const auto dtype = cuda_kernel_dtype(k, op, "k");
  c10::cuda::CUDAGuard guard(k.device());
  const at::Tensor K = k.contiguous(), A = a_in.contiguous(), A0 = a0.contiguous(), KK = k_k.contiguous(),
                   KA = k_a.contiguous();
  at::Tensor k_out = at::empty_like(K), neg_kk = at::empty_like(K), kk_a = at::empty_like(K);
  rwkv7_cuda::KkPreForwardArgs args;
  args.in = {K.data_ptr(), A.data_ptr(), A0.data_ptr(), KK.data_ptr(), KA.data_ptr()};
  args.out = {k_out.data_ptr(), neg_kk.data_ptr(), kk_a.data_ptr()};
  check_cuda_launch(rwkv7_cuda::kk_pre_forward(dtype, K.size(0) * K.size(1), int(K.size(2)), int(H), args,
                                               at::cuda::getCurrentCUDAStream()),
                    op);
  return {k_out, neg_kk, kk_a};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> kk_pre_backward_cuda(
    const at::Tensor& k, const at::Tensor& a_in, const at::Tensor& a0, const at::Tensor& k_k, const at::Tensor& k_a,
    int64_t H, const at::Tensor& dk_out, const at::Tensor& dneg, const at::Tensor& dkka) {
  const char* op = "rwkv7::kk_pre_backward (CUDA)";
  check_kk_pre(op, k, a_in, a0, k_k, k_a, H);
  check_kk_pre_output_grads(op, k, dk_out, dneg, dkka);
  const auto dtype = cuda_kernel_dtype(k, op, "k");
  c10::cuda::CUDAGuard guard(k.device());
  auto in = [&](const at::Tensor& t) { return t.to(k.scalar_type()).contiguous(); };
  const at::Tensor K = in(k), A = in(a_in), A0 = in(a0), KK = in(k_k), KA = in(k_a), DK = in(dk_out),
                   DN = in(dneg), DKA = in(dkka);
  const long rows = K.size(0) * K.size(1);
  const int C = int(K.size(2));
  at::Tensor dk = at::empty_like(K), da_in = at::empty_like(K), da0 = at::empty_like(A0), dk_k = at::empty_like(A0),
             dk_a = at::empty_like(A0);
  at::Tensor partial = at::empty({rwkv7_cuda::kk_pre_partial_floats(rows, C)}, K.options().dtype(at::kFloat));
  rwkv7_cuda::KkPreBackwardArgs args;
  args.in = {K.data_ptr(), A.data_ptr(), A0.data_ptr(), KK.data_ptr(), KA.data_ptr()};
  args.dout = {DK.data_ptr(), DN.data_ptr(), DKA.data_ptr()};
  args.grad = {dk.data_ptr(), da_in.data_ptr(), da0.data_ptr(), dk_k.data_ptr(), dk_a.data_ptr()};
  check_cuda_launch(rwkv7_cuda::kk_pre_backward(dtype, rows, C, int(H), args, partial.data_ptr<float>(),
                                                at::cuda::getCurrentCUDAStream()),
                    op);
  return {dk, da_in, da0, dk_k, dk_a};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CUDA, m) {
  m.impl("kk_pre", &kk_pre_cuda);
  m.impl("kk_pre_backward", &kk_pre_backward_cuda);
}

}  // namespace rwkv7_ops
