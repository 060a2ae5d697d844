// WKV-7's CUDA kernels as the op's CUDA implementation: checks, allocation, launch on the
// current stream. The kernels themselves are in wkv7_kernels.cuh (entry points in
// wkv7_cuda_kernels.cu).
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>

#include "../cuda_op_util.h"
#include "wkv7_check.h"
#include "wkv7_cuda_kernels.h"

namespace rwkv7_ops {
namespace {

using rwkv7_cuda::DecayInput;

// wkv7_reset's extra inputs (undefined: no restarts), and what the kernels read of them.
struct Restarts {
  at::Tensor reset, s_reset;
  bool defined() const { return reset.defined(); }
};

struct RestartBuffers {
  at::Tensor reset, s_reset, ds_reset;  // contiguous; s_reset float
  rwkv7_cuda::Wkv7Restarts args;

  RestartBuffers(const Restarts& given, const at::Tensor& r, bool with_gradient) {
    if (!given.defined()) return;
    reset = given.reset.contiguous();
    s_reset = given.s_reset.to(at::kFloat).contiguous();
    args.reset = reset.data_ptr<bool>();
    args.s_reset = s_reset.data_ptr<float>();
    args.s_reset_batch_stride = s_reset.dim() == 4 ? long(r.size(2) * r.size(3) * r.size(3)) : 0L;
    if (with_gradient) {
      ds_reset = at::empty({r.size(0), r.size(2), r.size(3), r.size(3)}, s_reset.options());
      args.ds_reset = ds_reset.data_ptr<float>();
    }
  }
};

// y, plus the saved state and S·a when `save_for_backward` (inference saves nothing); from the
// initial state s0 when it is defined (the kernels read it as float).
std::tuple<at::Tensor, at::Tensor, at::Tensor> run_forward(
    const char* op, DecayInput decay, const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
    const at::Tensor& v, const at::Tensor& a, const at::Tensor& b, bool save_for_backward,
    const at::Tensor& s0 = {}, at::Tensor* final_state = nullptr, const Restarts& restarts = {}) {
  check_wkv7_inputs(op, r, w, k, v, a, b);
  check_cuda_shape(op, r);
  if (s0.defined()) check_initial_state(op, s0, r);
  if (restarts.defined()) check_reset(op, restarts.reset, restarts.s_reset, r);
  const auto dtype = cuda_kernel_dtype(r, op, "r");
  c10::cuda::CUDAGuard device_guard(r.device());
  const int64_t B = r.size(0), T = r.size(1), H = r.size(2), N = r.size(3);
  at::Tensor R = r.contiguous(), W = w.contiguous(), K = k.contiguous(), V = v.contiguous(),
             A = a.contiguous(), Bt = b.contiguous();
  at::Tensor y = at::empty(r.sizes(), R.options());
  auto f32 = R.options().dtype(at::kFloat);
  at::Tensor s, sa;
  if (save_for_backward) {
    s = at::empty({B, H, T / rwkv7_cuda::kChunk, N, N}, f32);
    sa = at::empty(r.sizes(), f32);
  }
  const at::Tensor S0 = s0.defined() ? s0.to(at::kFloat).contiguous() : at::Tensor();
  rwkv7_cuda::Wkv7ForwardArgs args;
  args.in = {R.data_ptr(), W.data_ptr(), K.data_ptr(), V.data_ptr(), A.data_ptr(), Bt.data_ptr()};
  args.y = y.data_ptr();
  args.s = save_for_backward ? s.data_ptr<float>() : nullptr;
  args.sa = save_for_backward ? sa.data_ptr<float>() : nullptr;
  args.s0 = S0.defined() ? S0.data_ptr<float>() : nullptr;
  args.s0_batch_stride = S0.defined() && S0.dim() == 4 ? long(H * N * N) : 0L;
  if (final_state != nullptr) {
    *final_state = at::empty({B, H, N, N}, f32);
    args.sT = final_state->data_ptr<float>();
  }
  const RestartBuffers restart(restarts, r, /*with_gradient=*/false);
  args.restarts = restart.args;
  check_cuda_launch(rwkv7_cuda::wkv7_forward(dtype, decay, int(B), int(T), int(H), int(N), args,
                                             at::cuda::getCurrentCUDAStream()),
                    op);
  return {y, s, sa};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> wkv7_forward_cuda(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& a, const at::Tensor& b) {
  return run_forward("rwkv7::wkv7_forward (CUDA)", DecayInput::kLogLog, r, w, k, v, a, b,
                     /*save_for_backward=*/true);
}

// The six input gradients, then the initial state's when s0 is defined (else undefined), then the
// restart state's when restarts are.
using Gradients = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

std::pair<Gradients, at::Tensor>
run_backward_restarts(const char* op, DecayInput decay, const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                      const at::Tensor& v, const at::Tensor& a, const at::Tensor& b, const at::Tensor& dy,
                      const at::Tensor& s, const at::Tensor& sa, const at::Tensor& s0, const at::Tensor& dsT,
                      const Restarts& restarts) {
  check_wkv7_inputs(op, r, w, k, v, a, b);
  if (restarts.defined()) check_reset(op, restarts.reset, restarts.s_reset, r);
  if (dsT.defined()) check_final_state_gradient(op, dsT, r);
  if (s0.defined()) check_initial_state(op, s0, r);
  check_cuda_shape(op, r);
  check_same_as_r(op, "dy", dy, r);
  check_same_as_r(op, "saved_sa", sa, r);
  TORCH_CHECK(s.defined() && s.device() == r.device(), op, ": argument 'saved_state' is on ",
              s.defined() ? s.device() : at::Device(at::kCPU), " but 'r' is on ", r.device());
  const auto dtype = cuda_kernel_dtype(r, op, "r");
  c10::cuda::CUDAGuard device_guard(r.device());
  const int64_t B = r.size(0), T = r.size(1), H = r.size(2), N = r.size(3);
  TORCH_CHECK(s.sizes() == at::IntArrayRef({B, H, T / rwkv7_cuda::kChunk, N, N}) &&
                  s.scalar_type() == at::kFloat && sa.scalar_type() == at::kFloat,
              op, ": 'saved_state'/'saved_sa' are not what wkv7_forward (CUDA) made");
  at::Tensor R = r.contiguous(), W = w.contiguous(), K = k.contiguous(), V = v.contiguous(),
             A = a.contiguous(), Bt = b.contiguous(), DY = dy.to(r.scalar_type()).contiguous(),
             S = s.contiguous(), SA = sa.contiguous();
  auto g = [&] { return at::empty(r.sizes(), R.options()); };
  at::Tensor dr = g(), dw = g(), dk = g(), dv = g(), da = g(), db = g();
  at::Tensor ds0 = s0.defined() ? at::empty({B, H, N, N}, R.options().dtype(at::kFloat)) : at::Tensor();
  rwkv7_cuda::Wkv7BackwardArgs args;
  args.in = {R.data_ptr(), W.data_ptr(), K.data_ptr(), V.data_ptr(), A.data_ptr(), Bt.data_ptr()};
  args.dy = DY.data_ptr();
  args.s = S.data_ptr<float>();
  args.sa = SA.data_ptr<float>();
  args.grad = {dr.data_ptr(), dw.data_ptr(), dk.data_ptr(), dv.data_ptr(), da.data_ptr(), db.data_ptr()};
  args.ds0 = ds0.defined() ? ds0.data_ptr<float>() : nullptr;
  const at::Tensor DST = dsT.defined() ? dsT.to(at::kFloat).contiguous() : at::Tensor();
  args.dsT = DST.defined() ? DST.data_ptr<float>() : nullptr;
  const RestartBuffers restart(restarts, r, /*with_gradient=*/true);
  args.restarts = restart.args;
  const at::Tensor S0 = s0.defined() ? s0.to(at::kFloat).contiguous() : at::Tensor();
  args.s0 = S0.defined() ? S0.data_ptr<float>() : nullptr;
  args.s0_batch_stride = S0.defined() && S0.dim() == 4 ? long(H * N * N) : 0L;
  check_cuda_launch(rwkv7_cuda::wkv7_backward(dtype, decay, int(B), int(T), int(H), int(N), args,
                                              at::cuda::getCurrentCUDAStream()),
                    op);
  return {{dr, dw, dk, dv, da, db, s0.defined() ? initial_state_gradient(ds0, s0) : at::Tensor()},
          restarts.defined() ? initial_state_gradient(restart.ds_reset, restarts.s_reset) : at::Tensor()};
}

Gradients run_backward(const char* op, DecayInput decay, const at::Tensor& r, const at::Tensor& w,
                       const at::Tensor& k, const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                       const at::Tensor& dy, const at::Tensor& s, const at::Tensor& sa, const at::Tensor& s0 = {},
                       const at::Tensor& dsT = {}) {
  return run_backward_restarts(op, decay, r, w, k, v, a, b, dy, s, sa, s0, dsT, {}).first;
}

// Drops run_backward's (undefined) initial-state gradient: the ops without s0 return six.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> six_gradients(
    const std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>& g) {
  return {std::get<0>(g), std::get<1>(g), std::get<2>(g), std::get<3>(g), std::get<4>(g), std::get<5>(g)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_backward_cuda(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                   const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                   const at::Tensor& dy, const at::Tensor& s, const at::Tensor& sa) {
  return six_gradients(run_backward("rwkv7::wkv7_backward (CUDA)", DecayInput::kLogLog, r, w, k, v, a, b, dy, s, sa));
}

// The raw-decay variant (fused_ops: 1): x in place of w, the soft clamp computed in the kernel.
std::tuple<at::Tensor, at::Tensor, at::Tensor> wkv7_raw_decay_forward_cuda(
    const at::Tensor& r, const at::Tensor& x, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& a, const at::Tensor& b) {
  return run_forward("rwkv7::wkv7_raw_decay_forward (CUDA)", DecayInput::kRaw, r, x, k, v, a, b,
                     /*save_for_backward=*/true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_raw_decay_backward_cuda(const at::Tensor& r, const at::Tensor& x, const at::Tensor& k,
                             const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                             const at::Tensor& dy, const at::Tensor& s, const at::Tensor& sa) {
  return six_gradients(
      run_backward("rwkv7::wkv7_raw_decay_backward (CUDA)", DecayInput::kRaw, r, x, k, v, a, b, dy, s, sa));
}

at::Tensor wkv7_raw_decay_cuda(const at::Tensor& r, const at::Tensor& x, const at::Tensor& k,
                               const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  return std::get<0>(run_forward("rwkv7::wkv7_raw_decay (CUDA)", DecayInput::kRaw, r, x, k, v, a, b,
                                 /*save_for_backward=*/false));
}

at::Tensor wkv7_cuda(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                     const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  return std::get<0>(run_forward("rwkv7::wkv7 (CUDA)", DecayInput::kLogLog, r, w, k, v, a, b,
                                 /*save_for_backward=*/false));
}

// wkv7 from an initial state s0 (state tuning): the same kernels with s0 and ds0 passed.
at::Tensor wkv7_state_cuda(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0) {
  return std::get<0>(run_forward("rwkv7::wkv7_state (CUDA)", DecayInput::kLogLog, r, w, k, v, a, b,
                                 /*save_for_backward=*/false, s0));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> wkv7_state_forward_cuda(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0) {
  return run_forward("rwkv7::wkv7_state_forward (CUDA)", DecayInput::kLogLog, r, w, k, v, a, b,
                     /*save_for_backward=*/true, s0);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_state_backward_cuda(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                         const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0, const at::Tensor& dy,
                         const at::Tensor& s, const at::Tensor& sa) {
  TORCH_CHECK(s0.defined(), "rwkv7::wkv7_state_backward (CUDA): argument 's0' is undefined");
  return run_backward("rwkv7::wkv7_state_backward (CUDA)", DecayInput::kLogLog, r, w, k, v, a, b, dy, s, sa, s0);
}

// wkv7_state_passing: the same kernels, also writing the final state / reading its gradient.
std::tuple<at::Tensor, at::Tensor> wkv7_state_passing_cuda(const at::Tensor& r, const at::Tensor& w,
                                                           const at::Tensor& k, const at::Tensor& v,
                                                           const at::Tensor& a, const at::Tensor& b,
                                                           const at::Tensor& s0) {
  at::Tensor sT;
  auto out = run_forward("rwkv7::wkv7_state_passing (CUDA)", DecayInput::kLogLog, r, w, k, v, a, b,
                         /*save_for_backward=*/false, s0, &sT);
  return {std::get<0>(out), sT};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> wkv7_state_passing_forward_cuda(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
    const at::Tensor& b, const at::Tensor& s0) {
  at::Tensor sT;
  auto [y, s, sa] = run_forward("rwkv7::wkv7_state_passing_forward (CUDA)", DecayInput::kLogLog, r, w, k, v, a, b,
                                /*save_for_backward=*/true, s0, &sT);
  return {y, sT, s, sa};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_state_passing_backward_cuda(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0, const at::Tensor& dy,
                                 const at::Tensor& dsT, const at::Tensor& s, const at::Tensor& sa) {
  const char* op = "rwkv7::wkv7_state_passing_backward (CUDA)";
  TORCH_CHECK(s0.defined(), op, ": argument 's0' is undefined");
  TORCH_CHECK(dsT.defined(), op, ": argument 'dsT' is undefined");
  return run_backward(op, DecayInput::kLogLog, r, w, k, v, a, b, dy, s, sa, s0, dsT);
}

// wkv7_reset: the same kernels, restarting from s_reset where reset says.
std::tuple<at::Tensor, at::Tensor> wkv7_reset_cuda(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                                                   const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                                   const at::Tensor& s0, const at::Tensor& reset,
                                                   const at::Tensor& s_reset) {
  at::Tensor sT;
  auto out = run_forward("rwkv7::wkv7_reset (CUDA)", DecayInput::kLogLog, r, w, k, v, a, b,
                         /*save_for_backward=*/false, s0, &sT, {reset, s_reset});
  return {std::get<0>(out), sT};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> wkv7_reset_forward_cuda(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
    const at::Tensor& b, const at::Tensor& s0, const at::Tensor& reset, const at::Tensor& s_reset) {
  at::Tensor sT;
  auto [y, s, sa] = run_forward("rwkv7::wkv7_reset_forward (CUDA)", DecayInput::kLogLog, r, w, k, v, a, b,
                                /*save_for_backward=*/true, s0, &sT, {reset, s_reset});
  return {y, sT, s, sa};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_reset_backward_cuda(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                         const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0, const at::Tensor& reset,
                         const at::Tensor& s_reset, const at::Tensor& dy, const at::Tensor& dsT, const at::Tensor& s,
                         const at::Tensor& sa) {
  const char* op = "rwkv7::wkv7_reset_backward (CUDA)";
  TORCH_CHECK(s0.defined(), op, ": argument 's0' is undefined");
  TORCH_CHECK(dsT.defined(), op, ": argument 'dsT' is undefined");
  auto [g, ds_reset] =
      run_backward_restarts(op, DecayInput::kLogLog, r, w, k, v, a, b, dy, s, sa, s0, dsT, {reset, s_reset});
  return std::tuple_cat(g, std::make_tuple(ds_reset));
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CUDA, m) {
  m.impl("wkv7_reset", &wkv7_reset_cuda);
  m.impl("wkv7_reset_forward", &wkv7_reset_forward_cuda);
  m.impl("wkv7_reset_backward", &wkv7_reset_backward_cuda);
  m.impl("wkv7_state_passing", &wkv7_state_passing_cuda);
  m.impl("wkv7_state_passing_forward", &wkv7_state_passing_forward_cuda);
  m.impl("wkv7_state_passing_backward", &wkv7_state_passing_backward_cuda);
  m.impl("wkv7_state", &wkv7_state_cuda);
  m.impl("wkv7_state_forward", &wkv7_state_forward_cuda);
  m.impl("wkv7_state_backward", &wkv7_state_backward_cuda);
  m.impl("wkv7", &wkv7_cuda);
  m.impl("wkv7_forward", &wkv7_forward_cuda);
  m.impl("wkv7_backward", &wkv7_backward_cuda);
  m.impl("wkv7_raw_decay", &wkv7_raw_decay_cuda);
  m.impl("wkv7_raw_decay_forward", &wkv7_raw_decay_forward_cuda);
  m.impl("wkv7_raw_decay_backward", &wkv7_raw_decay_backward_cuda);
}

}  // namespace rwkv7_ops
