// lnx_rkvres_xg's CUDA kernels as the op's CUDA implementation (kernels in lnx_rkvres_xg_kernels.cuh).
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../cuda_op_util.h"
#include "lnx_rkvres_xg_check.h"
#include "lnx_rkvres_xg_cuda_kernels.h"

namespace rwkv7_ops {
namespace {

using Grads = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                         at::Tensor>;  // dy, dr, dk, dv, dr_k, dg, dln_w, dln_b

at::Tensor lnx_rkvres_xg_cuda(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& r_k, const at::Tensor& g, const at::Tensor& ln_w,
                              const at::Tensor& ln_b, int64_t H, double eps) {
  const char* op = "rwkv7::lnx_rkvres_xg (CUDA)";
  check_lnx_rkvres_xg(op, y, r, k, v, r_k, g, ln_w, ln_b, H, eps);
  const auto dtype = cuda_kernel_dtype(y, op, "y");
  c10::cuda::CUDAGuard guard(y.device());
  const at::Tensor Y = y.contiguous(), R = r.contiguous(), K = k.contiguous(), V = v.contiguous(),
                   RK = r_k.contiguous(), G = g.contiguous(), W = ln_w.contiguous(), Bias = ln_b.contiguous();
  at::Tensor out = at::empty_like(Y);
  rwkv7_cuda::LnxRkvresXgForwardArgs args;
  args.in = {Y.data_ptr(), R.data_ptr(), K.data_ptr(), V.data_ptr(), RK.data_ptr(), G.data_ptr(), W.data_ptr(),
             Bias.data_ptr()};
  args.out = out.data_ptr();
  check_cuda_launch(rwkv7_cuda::lnx_rkvres_xg_forward(dtype, Y.size(0) * Y.size(1), int(Y.size(2)), int(H),
                                                      float(eps), args, at::cuda::getCurrentCUDAStream()),
                    op);
  return out;
}

Grads lnx_rkvres_xg_backward_cuda(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k,
                                  const at::Tensor& v, const at::Tensor& r_k, const at::Tensor& g,
                                  const at::Tensor& ln_w, const at::Tensor& ln_b, int64_t H, double eps,
                                  const at::Tensor& dout) {
  const char* op = "rwkv7::lnx_rkvres_xg_backward (CUDA)";
  check_lnx_rkvres_xg(op, y, r, k, v, r_k, g, ln_w, ln_b, H, eps);
  check_lnx_rkvres_xg_dout(op, y, dout);
  const auto dtype = cuda_kernel_dtype(y, op, "y");
  c10::cuda::CUDAGuard guard(y.device());
  auto in = [&](const at::Tensor& t) { return t.to(y.scalar_type()).contiguous(); };
  const at::Tensor Y = in(y), R = in(r), K = in(k), V = in(v), RK = in(r_k), G = in(g), W = in(ln_w),
                   Bias = in(ln_b), DOUT = in(dout);
  const long rows = Y.size(0) * Y.size(1);
  const int C = int(Y.size(2));
  at::Tensor dy = at::empty_like(Y), dr = at::empty_like(Y), dk = at::empty_like(Y), dv = at::empty_like(Y),
             dr_k = at::empty_like(RK), dg = at::empty_like(Y), dln_w = at::empty_like(W),
             dln_b = at::empty_like(Bias);
  at::Tensor partial =
      at::empty({rwkv7_cuda::lnx_rkvres_xg_partial_floats(rows, C)}, Y.options().dtype(at::kFloat));
  rwkv7_cuda::LnxRkvresXgBackwardArgs args;
  args.in = {Y.data_ptr(), R.data_ptr(), K.data_ptr(), V.data_ptr(), RK.data_ptr(), G.data_ptr(), W.data_ptr(),
             Bias.data_ptr()};
  args.dout = DOUT.data_ptr();
  args.grad = {dy.data_ptr(), dr.data_ptr(), dk.data_ptr(), dv.data_ptr(), dr_k.data_ptr(), dg.data_ptr(),
               dln_w.data_ptr(), dln_b.data_ptr()};
  check_cuda_launch(rwkv7_cuda::lnx_rkvres_xg_backward(dtype, rows, C, int(H), float(eps), args,
                                                       partial.data_ptr<float>(), at::cuda::getCurrentCUDAStream()),
                    op);
  return {dy, dr, dk, dv, dr_k, dg, dln_w, dln_b};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CUDA, m) {
  m.impl("lnx_rkvres_xg", &lnx_rkvres_xg_cuda);
  m.impl("lnx_rkvres_xg_backward", &lnx_rkvres_xg_backward_cuda);
}

}  // namespace rwkv7_ops
