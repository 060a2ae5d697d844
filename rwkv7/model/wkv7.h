// The C++ entry to the rwkv7::wkv7 custom op (ops/), through the dispatcher, so CPU, CUDA
// and autograd all come from the op library's registrations.
#pragma once
#include <ATen/core/Tensor.h>

#include <tuple>

namespace rwkv7 {

// r, w, k, v, a, b: [B, T, H, N], one dtype and device. Returns y: [B, T, H, N].
// S_t = S_{t-1} diag(exp(-exp(w_t))) + (S_{t-1} a_t) b_t^T + v_t k_t^T ;  y_t = S_t r_t
at::Tensor wkv7(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                const at::Tensor& v, const at::Tensor& a, const at::Tensor& b);

// The same from an initial state s0 instead of 0: [H, N, N] shared by every sample (RWKV-PEFT's
// time_state) or [B, H, N, N]; differentiable in s0 (rwkv7::wkv7_state).
at::Tensor wkv7_state(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                      const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0);

// wkv7_state that also returns the final state sT [B, H, N, N] (fp32; fp64 for fp64 inputs), and
// is differentiable through it (rwkv7::wkv7_state_passing): one chunk of a long sample, the
// next chunk starting from sT. s0 as in wkv7_state.
std::tuple<at::Tensor, at::Tensor> wkv7_state_passing(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                                                      const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                                      const at::Tensor& s0);

// wkv7_state_passing whose state restarts from s_reset (shaped as s0) before every step t with
// reset[b, t] (bool [B, T]): packed documents, each its own sequence (rwkv7::wkv7_reset).
// Differentiable in s_reset too.
std::tuple<at::Tensor, at::Tensor> wkv7_reset(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                                              const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                              const at::Tensor& s0, const at::Tensor& reset,
                                              const at::Tensor& s_reset);

// The same recurrence continued from a state S ([B, H, N, N], fp32, updated in place), as
// plain tensor ops one step at a time: for inference in RNN mode, on any device. With `reset`
// ([B, T] bool) defined, S restarts from s_reset ([H, N, N] or [B, H, N, N]) before each marked step.
at::Tensor wkv7_scan(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                     const at::Tensor& v, const at::Tensor& a, const at::Tensor& b, at::Tensor& S,
                     const at::Tensor& reset = {}, const at::Tensor& s_reset = {});

}  // namespace rwkv7
