// The math of RWKV-PEFT's adapters on a linear layer y = x W^T (W: [out, in]), in one place: the
// form training runs (on x) and the form merging writes (into W) side by side, so the two cannot
// drift apart. tests/test_peft_merge.cpp holds x (W + delta)^T against x W^T + the forward form.
//
//   LoRA / PiSSA  A [r, in], B [out, r]:  y += scale B A x            delta = scale B A
//                 (LoRA: scale = alpha / r and dropout on x; PiSSA: scale 1, W is the residual W - B0 A0)
//   DiSHA (bone)  disha [r, out]:         y += (sum over r-wide blocks of x) disha
//                 input channel c meets row c % r:  delta[o, c] = disha[c % r, o]
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace rwkv7::adapter_math {

inline at::Tensor lora_forward(const at::Tensor& x, const at::Tensor& A, const at::Tensor& B, double scale,
                               double dropout, bool training) {
  const at::Tensor xd = dropout > 0 ? at::dropout(x, dropout, training) : x;
  return at::linear(at::linear(xd, A), B) * scale;
}

// [out, in] in float64
inline at::Tensor lora_delta(const at::Tensor& A, const at::Tensor& B, double scale) {
  return at::matmul(B.to(at::kDouble), A.to(at::kDouble)) * scale;
}

// x [..., in] with in a multiple of r (training checks it when it adds the adapter)
inline at::Tensor disha_forward(const at::Tensor& x, const at::Tensor& disha) {
  const int64_t r = disha.size(0);
  std::vector<int64_t> blocks(x.sizes().begin(), x.sizes().end() - 1);
  blocks.push_back(x.size(-1) / r);
  blocks.push_back(r);
  return at::matmul(x.reshape(blocks).sum(-2), disha);
}

// [out, in] in float64: disha^T repeated along the input and cut to its width (an input width
// that is no multiple of r reads as x zero-padded to whole blocks)
inline at::Tensor disha_delta(const at::Tensor& disha, int64_t in) {
  const int64_t r = disha.size(0);
  return disha.to(at::kDouble).t().repeat({1, (in + r - 1) / r}).narrow(1, 0, in);
}

}  // namespace rwkv7::adapter_math
