// vres_gate's CUDA kernels as the op's CUDA implementation (kernels in vres_gate_kernels.cuh).
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../cuda_op_util.h"
#include "vres_gate_check.h"
#include "vres_gate_cuda_kernels.h"

namespace rwkv7_ops {
namespace {

at::Tensor vres_gate_cuda(const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in,
                          const at::Tensor& v0) {
  const char* op = "rwkv7::vres_gate (CUDA)";
  check_vres_gate(op, v, v_first, v_in, v0);
  const auto dtype = cuda_kernel_dtype(v, op, "v");
  c10::cuda::CUDAGuard guard(v.device());
  const at::Tensor V = v.contiguous(), VF = v_first.contiguous(), VI = v_in.contiguous(), V0 = v0.contiguous();
  at::Tensor out = at::empty_like(V);
  rwkv7_cuda::VresGateForwardArgs args;
  args.in = {V.data_ptr(), VF.data_ptr(), VI.data_ptr(), V0.data_ptr()};
  args.out = out.data_ptr();
  check_cuda_launch(rwkv7_cuda::vres_gate_forward(dtype, V.size(0) * V.size(1), int(V.size(2)), args,
                                                  at::cuda::getCurrentCUDAStream()),
                    op);
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> vres_gate_backward_cuda(
    const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in, const at::Tensor& v0,
    const at::Tensor& dout) {
  const char* op = "rwkv7::vres_gate_backward (CUDA)";
  check_vres_gate(op, v, v_first, v_in, v0);
  check_vres_gate_dout(op, v, dout);
  const auto dtype = cuda_kernel_dtype(v, op, "v");
  c10::cuda::CUDAGuard guard(v.device());
  const at::Tensor V = v.contiguous(), VF = v_first.contiguous(), VI = v_in.contiguous(), V0 = v0.contiguous(),
                   D = dout.to(v.scalar_type()).contiguous();
  const long rows = V.size(0) * V.size(1);
  const int C = int(V.size(2));
  at::Tensor dv = at::empty_like(V), dvf = at::empty_like(V), dvi = at::empty_like(V), dv0 = at::empty_like(V0);
  at::Tensor partial = at::empty({rwkv7_cuda::vres_gate_partial_floats(rows, C)}, V.options().dtype(at::kFloat));
  rwkv7_cuda::VresGateBackwardArgs args;
  args.in = {V.data_ptr(), VF.data_ptr(), VI.data_ptr(), V0.data_ptr()};
  args.dout = D.data_ptr();
  args.grad = {dv.data_ptr(), dvf.data_ptr(), dvi.data_ptr(), dv0.data_ptr()};
  check_cuda_launch(rwkv7_cuda::vres_gate_backward(dtype, rows, C, args, partial.data_ptr<float>(),
                                                   at::cuda::getCurrentCUDAStream()),
                    op);
  return {dv, dvf, dvi, dv0};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CUDA, m) {
  m.impl("vres_gate", &vres_gate_cuda);
  m.impl("vres_gate_backward", &vres_gate_backward_cuda);
}

}  // namespace rwkv7_ops
