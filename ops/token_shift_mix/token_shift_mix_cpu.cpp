// token_shift_mix on the CPU, the slow, obviously right reference the CUDA kernels are tested
// against. With x [B, T, C] and mix [n, C] (n lerp coefficients, 6 for the time mix, 1 for the
// channel mix):
//
//   xx[b,t] = x[b,t-1] - x[b,t]            (x[b,-1] = 0: the token shift)
//   out[j,b,t] = x[b,t] + xx[b,t] * mix[j]
//
// Backward, with dout [n, B, T, C] and dxx[b,t] = sum_j dout[j,b,t] * mix[j]:
//   dx[b,t]   = sum_j dout[j,b,t] - dxx[b,t] + dxx[b,t+1]     (dxx[b,T] = 0)
//   dmix[j]   = sum_{b,t} dout[j,b,t] * xx[b,t]
#include <ATen/ATen.h>
#include <torch/library.h>

#include "token_shift_mix_check.h"

namespace rwkv7_ops {
namespace {

at::Tensor shifted_difference(const at::Tensor& x) {  // xx = x[t-1] - x[t]
  return at::constant_pad_nd(x, {0, 0, 1, -1}) - x;
}

at::Tensor token_shift_mix_cpu(const at::Tensor& x, const at::Tensor& mix) {
  check_token_shift_mix("rwkv7::token_shift_mix", x, mix);
  const int64_t n = mix.size(0), C = mix.size(1);
  return x.unsqueeze(0) + shifted_difference(x).unsqueeze(0) * mix.view({n, 1, 1, C});
}

std::tuple<at::Tensor, at::Tensor> token_shift_mix_backward_cpu(const at::Tensor& x, const at::Tensor& mix,
                                                                const at::Tensor& dout) {
  check_token_shift_mix("rwkv7::token_shift_mix_backward", x, mix);
  const int64_t n = mix.size(0), C = mix.size(1);
  const at::Tensor dxx = (dout * mix.view({n, 1, 1, C})).sum(0);
  const at::Tensor dx = dout.sum(0) - dxx + at::constant_pad_nd(dxx, {0, 0, -1, 1});
  const at::Tensor dmix = (dout * shifted_difference(x).unsqueeze(0)).sum({1, 2});
  return {dx, dmix};
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CPU, m) {
  m.impl("token_shift_mix", &token_shift_mix_cpu);
  m.impl("token_shift_mix_backward", &token_shift_mix_backward_cpu);
}

}  // namespace rwkv7_ops
