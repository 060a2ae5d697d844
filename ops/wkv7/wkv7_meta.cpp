// WKV-7 on the Meta device: shapes and dtypes only, no data. It lets a model be built and run
// on `meta` (shape checks of large configurations without memory) and lets torch.compile /
// opcheck propagate shapes through the op. The saved tensors take the CPU kernel's layout.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <tuple>

#include "wkv7_check.h"

namespace rwkv7_ops {
namespace {

constexpr int64_t kChunk = 16;

std::tuple<at::Tensor, at::Tensor, at::Tensor> wkv7_forward_meta(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& a, const at::Tensor& b) {
  check_wkv7_inputs("rwkv7::wkv7_forward (Meta)", r, w, k, v, a, b);
  const int64_t B = r.size(0), T = r.size(1), H = r.size(2), N = r.size(3);
  const auto acc = r.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return {at::empty(r.sizes(), r.options()),
          at::empty({B, H, (T + kChunk - 1) / kChunk, N, N}, r.options().dtype(acc)),
          at::empty({0}, r.options().dtype(acc))};
}

at::Tensor wkv7_meta(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                     const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  check_wkv7_inputs("rwkv7::wkv7 (Meta)", r, w, k, v, a, b);
  return at::empty(r.sizes(), r.options());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_backward_meta(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                   const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                   const at::Tensor& dy, const at::Tensor&, const at::Tensor&) {
  const char* op = "rwkv7::wkv7_backward (Meta)";
  check_wkv7_inputs(op, r, w, k, v, a, b);
  check_same_as_r(op, "dy", dy, r);
  auto g = [&] { return at::empty(r.sizes(), r.options()); };
  return {g(), g(), g(), g(), g(), g()};
}

at::Tensor wkv7_state_meta(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0) {
  check_wkv7_inputs("rwkv7::wkv7_state (Meta)", r, w, k, v, a, b);
  check_initial_state("rwkv7::wkv7_state (Meta)", s0, r);
  return at::empty(r.sizes(), r.options());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> wkv7_state_forward_meta(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0) {
  check_initial_state("rwkv7::wkv7_state_forward (Meta)", s0, r);
  return wkv7_forward_meta(r, w, k, v, a, b);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_state_backward_meta(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                         const at::Tensor& v, const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0,
                         const at::Tensor& dy, const at::Tensor& s, const at::Tensor& sa) {
  check_initial_state("rwkv7::wkv7_state_backward (Meta)", s0, r);
  auto [dr, dw, dk, dv, da, db] = wkv7_backward_meta(r, w, k, v, a, b, dy, s, sa);
  return {dr, dw, dk, dv, da, db, at::empty(s0.sizes(), s0.options())};
}

// wkv7_state_passing: wkv7_state's shapes plus the final state [B, H, N, N] (float32, float64
// for float64 inputs, as on the CPU).
at::Tensor final_state_meta(const at::Tensor& r) {
  const auto acc = r.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return at::empty({r.size(0), r.size(2), r.size(3), r.size(3)}, r.options().dtype(acc));
}

std::tuple<at::Tensor, at::Tensor> wkv7_state_passing_meta(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                                                           const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                                           const at::Tensor& s0) {
  check_wkv7_inputs("rwkv7::wkv7_state_passing (Meta)", r, w, k, v, a, b);
  check_initial_state("rwkv7::wkv7_state_passing (Meta)", s0, r);
  return {at::empty(r.sizes(), r.options()), final_state_meta(r)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> wkv7_state_passing_forward_meta(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
    const at::Tensor& b, const at::Tensor& s0) {
  check_initial_state("rwkv7::wkv7_state_passing_forward (Meta)", s0, r);
  auto [y, saved, saved_sa] = wkv7_forward_meta(r, w, k, v, a, b);
  return {y, final_state_meta(r), saved, saved_sa};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_state_passing_backward_meta(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0, const at::Tensor& dy,
                                 const at::Tensor& dsT, const at::Tensor& s, const at::Tensor& sa) {
  check_final_state_gradient("rwkv7::wkv7_state_passing_backward (Meta)", dsT, r);
  return wkv7_state_backward_meta(r, w, k, v, a, b, s0, dy, s, sa);
}

// wkv7_reset: wkv7_state_passing's shapes; the backward adds s_reset's gradient in its shape.
std::tuple<at::Tensor, at::Tensor> wkv7_reset_meta(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                                                   const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                                   const at::Tensor& s0, const at::Tensor& reset,
                                                   const at::Tensor& s_reset) {
  check_reset("rwkv7::wkv7_reset (Meta)", reset, s_reset, r);
  return wkv7_state_passing_meta(r, w, k, v, a, b, s0);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> wkv7_reset_forward_meta(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
    const at::Tensor& b, const at::Tensor& s0, const at::Tensor& reset, const at::Tensor& s_reset) {
  check_reset("rwkv7::wkv7_reset_forward (Meta)", reset, s_reset, r);
  return wkv7_state_passing_forward_meta(r, w, k, v, a, b, s0);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_reset_backward_meta(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                         const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0, const at::Tensor& reset,
                         const at::Tensor& s_reset, const at::Tensor& dy, const at::Tensor& dsT, const at::Tensor& s,
                         const at::Tensor& sa) {
  check_reset("rwkv7::wkv7_reset_backward (Meta)", reset, s_reset, r);
  return std::tuple_cat(wkv7_state_passing_backward_meta(r, w, k, v, a, b, s0, dy, dsT, s, sa),
                        std::make_tuple(at::empty(s_reset.sizes(), s_reset.options())));
}

// wkv7_raw_decay: x in place of w, the same shapes. The plain op is the CPU's composite or the
// CUDA kernel; its _forward/_backward pieces exist on CUDA only, so their saved tensors take the
// CUDA kernels' layout (chunk-end states [B, H, T/16, N, N] and S·a [B, T, H, N], float) and their
// checks are the CUDA kernels' (N = 64 or 128, T % 16 == 0).
at::Tensor wkv7_raw_decay_meta(const at::Tensor& r, const at::Tensor& x, const at::Tensor& k,
                               const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  check_wkv7_inputs("rwkv7::wkv7_raw_decay (Meta)", r, x, k, v, a, b);
  return at::empty(r.sizes(), r.options());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> wkv7_raw_decay_forward_meta(
    const at::Tensor& r, const at::Tensor& x, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& a, const at::Tensor& b) {
  const char* op = "rwkv7::wkv7_raw_decay_forward (Meta)";
  check_wkv7_inputs(op, r, x, k, v, a, b);
  check_cuda_shape(op, r);
  const int64_t B = r.size(0), T = r.size(1), H = r.size(2), N = r.size(3);
  const auto f32 = r.options().dtype(at::kFloat);
  return {at::empty(r.sizes(), r.options()), at::empty({B, H, T / rwkv7_cuda::kChunk, N, N}, f32),
          at::empty(r.sizes(), f32)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_raw_decay_backward_meta(const at::Tensor& r, const at::Tensor& x, const at::Tensor& k,
                             const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                             const at::Tensor& dy, const at::Tensor&, const at::Tensor& sa) {
  const char* op = "rwkv7::wkv7_raw_decay_backward (Meta)";
  check_wkv7_inputs(op, r, x, k, v, a, b);
  check_cuda_shape(op, r);
  check_same_as_r(op, "dy", dy, r);
  check_same_as_r(op, "saved_sa", sa, r);
  auto g = [&] { return at::empty(r.sizes(), r.options()); };
  return {g(), g(), g(), g(), g(), g()};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, Meta, m) {
  m.impl("wkv7_raw_decay", &wkv7_raw_decay_meta);
  m.impl("wkv7_raw_decay_forward", &wkv7_raw_decay_forward_meta);
  m.impl("wkv7_raw_decay_backward", &wkv7_raw_decay_backward_meta);
  m.impl("wkv7_state", &wkv7_state_meta);
  m.impl("wkv7_state_forward", &wkv7_state_forward_meta);
  m.impl("wkv7_state_backward", &wkv7_state_backward_meta);
  m.impl("wkv7_state_passing", &wkv7_state_passing_meta);
  m.impl("wkv7_state_passing_forward", &wkv7_state_passing_forward_meta);
  m.impl("wkv7_state_passing_backward", &wkv7_state_passing_backward_meta);
  m.impl("wkv7_reset", &wkv7_reset_meta);
  m.impl("wkv7_reset_forward", &wkv7_reset_forward_meta);
  m.impl("wkv7_reset_backward", &wkv7_reset_backward_meta);
  m.impl("wkv7", &wkv7_meta);
  m.impl("wkv7_forward", &wkv7_forward_meta);
  m.impl("wkv7_backward", &wkv7_backward_meta);
}

}  // namespace rwkv7_ops
