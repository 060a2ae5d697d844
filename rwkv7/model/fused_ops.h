// The C++ entries to the fused ops of the training step (ops/op_table.h lists them, ops/<op>/
// holds each), through the dispatcher: CPU, CUDA and autograd come from the op library. The
// model calls them when fused_ops is on (TimeMix / ChannelMix / the loss); each computes what
// the composite code beside it computes, in one pass.
#pragma once
#include <ATen/core/Tensor.h>

#include <tuple>

namespace rwkv7::fused {

// x [B, T, C], mix [n, C] -> [n, B, T, C]: x + (shift(x) - x) * mix[j]
at::Tensor token_shift_mix(const at::Tensor& x, const at::Tensor& mix);

// WKV-7 with the raw decay input x: w = -softplus(-x) - 0.5 inside the kernel.
at::Tensor wkv7_raw_decay(const at::Tensor& r, const at::Tensor& x, const at::Tensor& k, const at::Tensor& v,
                          const at::Tensor& a, const at::Tensor& b);

// -> (k * (1 + (a - 1) * k_a), -kk, kk * a) with a = sigmoid(a0 + a_in), kk = normalize(k * k_k) per head
std::tuple<at::Tensor, at::Tensor, at::Tensor> kk_pre(const at::Tensor& k, const at::Tensor& a_in,
                                                      const at::Tensor& a0, const at::Tensor& k_k,
                                                      const at::Tensor& k_a, int64_t n_head);

// v + (v_first - v) * sigmoid(v0 + v_in)
at::Tensor vres_gate(const at::Tensor& v, const at::Tensor& v_first, const at::Tensor& v_in, const at::Tensor& v0);

// (GroupNorm_H(y) + (sum_n r k r_k) v) * g
at::Tensor lnx_rkvres_xg(const at::Tensor& y, const at::Tensor& r, const at::Tensor& k, const at::Tensor& v,
                         const at::Tensor& r_k, const at::Tensor& g, const at::Tensor& ln_w, const at::Tensor& ln_b,
                         int64_t n_head, double eps);

// relu(x)^2
at::Tensor relu_square(const at::Tensor& x);

// logits [M, V], targets [M] -> mean cross-entropy (float32); L2Wrap in its backward
at::Tensor cross_entropy_l2wrap(const at::Tensor& logits, const at::Tensor& targets);
// Its gradient for the logits given dloss (the op's backward, called directly by the chunked head).
at::Tensor cross_entropy_l2wrap_backward(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& dloss);

}  // namespace rwkv7::fused
