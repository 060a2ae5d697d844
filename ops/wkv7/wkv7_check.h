// Argument checks shared by every device's WKV-7 kernels. Each message names the argument
// at fault, so a user who wires the op wrongly learns which input to look at.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/sum.h>
#include <c10/util/Exception.h>

#include <array>

#include "wkv7_cuda_shape.h"

namespace rwkv7_ops {

inline void check_wkv7_inputs(const char* op, const at::Tensor& r, const at::Tensor& w,
                              const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
                              const at::Tensor& b) {
  const std::array<const at::Tensor*, 6> xs{&r, &w, &k, &v, &a, &b};
  const std::array<const char*, 6> names{"r", "w", "k", "v", "a", "b"};
  TORCH_CHECK(r.defined(), op, ": argument 'r' is undefined");
  TORCH_CHECK(r.dim() == 4, op, ": argument 'r' must have shape [B, T, H, N], got rank ",
              r.dim());
  for (size_t i = 0; i < xs.size(); ++i) {
    const at::Tensor& x = *xs[i];
    TORCH_CHECK(x.defined(), op, ": argument '", names[i], "' is undefined");
    TORCH_CHECK(x.sizes() == r.sizes(), op, ": argument '", names[i], "' has shape ",
                x.sizes(), " but 'r' has shape ", r.sizes(), " (all six must be [B, T, H, N])");
    TORCH_CHECK(x.scalar_type() == r.scalar_type(), op, ": argument '", names[i],
                "' has dtype ", x.scalar_type(), " but 'r' has dtype ", r.scalar_type());
    TORCH_CHECK(x.device() == r.device(), op, ": argument '", names[i], "' is on ", x.device(),
                " but 'r' is on ", r.device());
  }
  TORCH_CHECK(r.size(0) >= 1 && r.size(1) >= 1 && r.size(2) >= 1 && r.size(3) >= 1, op,
              ": every dimension of [B, T, H, N] must be >= 1, got ", r.sizes());
}

inline void check_same_as_r(const char* op, const char* name, const at::Tensor& x,
                            const at::Tensor& r) {
  TORCH_CHECK(x.defined() && x.sizes() == r.sizes() && x.device() == r.device(), op,
              ": argument '", name, "' must match 'r' in shape and device, got ",
              x.defined() ? x.sizes() : at::IntArrayRef{});
}

// What the CUDA kernels (and so the CUDA-only pieces' Meta kernels) need beyond check_wkv7_inputs.
inline void check_cuda_shape(const char* op, const at::Tensor& r) {
  TORCH_CHECK(r.size(3) == 64 || r.size(3) == 128, op, ": argument 'r' has head size N = ", r.size(3),
              "; the CUDA kernel needs N = 64 or 128");
  TORCH_CHECK(r.size(1) % rwkv7_cuda::kChunk == 0, op, ": argument 'r' has T = ", r.size(1),
              "; the CUDA kernel needs T to be a multiple of ", rwkv7_cuda::kChunk,
              " (pad the sequence)");
}

// s0, WKV-7's initial state: [H, N, N] (one state every sample starts from) or [B, H, N, N],
// row = value channel, column = key channel (y = S r), any floating dtype, on r's device.
inline void check_initial_state(const char* op, const at::Tensor& s0, const at::Tensor& r) {
  const int64_t B = r.size(0), H = r.size(2), N = r.size(3);
  TORCH_CHECK(s0.defined(), op, ": argument 's0' is undefined");
  const bool shared = s0.dim() == 3 && s0.sizes() == at::IntArrayRef({H, N, N});
  const bool per_sample = s0.dim() == 4 && s0.sizes() == at::IntArrayRef({B, H, N, N});
  TORCH_CHECK(shared || per_sample, op, ": argument 's0' has shape ", s0.sizes(), "; with r of shape ",
              r.sizes(), " it must be [H, N, N] = [", H, ", ", N, ", ", N, "] or [B, H, N, N] = [", B, ", ", H,
              ", ", N, ", ", N, "]");
  TORCH_CHECK(at::isFloatingType(s0.scalar_type()), op, ": argument 's0' has dtype ", s0.scalar_type(),
              "; it must be a floating type");
  TORCH_CHECK(s0.device() == r.device(), op, ": argument 's0' is on ", s0.device(), " but 'r' is on ",
              r.device());
}

// dsT, the gradient of the final state (wkv7_state_passing): [B, H, N, N], floating, on r's device.
inline void check_final_state_gradient(const char* op, const at::Tensor& dsT, const at::Tensor& r) {
  const int64_t B = r.size(0), H = r.size(2), N = r.size(3);
  TORCH_CHECK(dsT.sizes() == at::IntArrayRef({B, H, N, N}), op, ": argument 'dsT' has shape ", dsT.sizes(),
              "; with r of shape ", r.sizes(), " it must be [B, H, N, N] = [", B, ", ", H, ", ", N, ", ", N, "]");
  TORCH_CHECK(at::isFloatingType(dsT.scalar_type()), op, ": argument 'dsT' has dtype ", dsT.scalar_type(),
              "; it must be a floating type");
  TORCH_CHECK(dsT.device() == r.device(), op, ": argument 'dsT' is on ", dsT.device(), " but 'r' is on ", r.device());
}

// reset, the restart mask of wkv7_reset: bool [B, T] on r's device; s_reset, the state restarted
// from, is checked as an initial state.
inline void check_reset(const char* op, const at::Tensor& reset, const at::Tensor& s_reset, const at::Tensor& r) {
  TORCH_CHECK(reset.defined(), op, ": argument 'reset' is undefined");
  TORCH_CHECK(reset.scalar_type() == at::kBool, op, ": argument 'reset' has dtype ", reset.scalar_type(),
              "; it must be bool");
  TORCH_CHECK(reset.sizes() == at::IntArrayRef({r.size(0), r.size(1)}), op, ": argument 'reset' has shape ",
              reset.sizes(), "; with r of shape ", r.sizes(), " it must be [B, T] = [", r.size(0), ", ", r.size(1), "]");
  TORCH_CHECK(reset.device() == r.device(), op, ": argument 'reset' is on ", reset.device(), " but 'r' is on ",
              r.device());
  TORCH_CHECK(s_reset.defined(), op, ": argument 's_reset' is undefined");
  const int64_t B = r.size(0), H = r.size(2), N = r.size(3);
  const bool shared = s_reset.sizes() == at::IntArrayRef({H, N, N});
  const bool per_sample = s_reset.sizes() == at::IntArrayRef({B, H, N, N});
  TORCH_CHECK(shared || per_sample, op, ": argument 's_reset' has shape ", s_reset.sizes(), "; with r of shape ",
              r.sizes(), " it must be [H, N, N] or [B, H, N, N]");
  TORCH_CHECK(at::isFloatingType(s_reset.scalar_type()), op, ": argument 's_reset' has dtype ",
              s_reset.scalar_type(), "; it must be a floating type");
  TORCH_CHECK(s_reset.device() == r.device(), op, ": argument 's_reset' is on ", s_reset.device(), " but 'r' is on ",
              r.device());
}

// The initial state's gradient in s0's shape and dtype from the per-sample one [B, H, N, N]:
// a state shared by the batch gets the sum over the batch.
inline at::Tensor initial_state_gradient(const at::Tensor& ds0_per_sample, const at::Tensor& s0) {
  const at::Tensor g = s0.dim() == 3 ? ds0_per_sample.sum(0) : ds0_per_sample;
  return g.to(s0.scalar_type());
}

}  // namespace rwkv7_ops
