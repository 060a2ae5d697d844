// kk_pre on the Meta device: shapes and dtypes only, no data (meta models, opcheck,
// torch.compile). The same checks as the CPU and CUDA kernels (kk_pre_check.h).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <tuple>

#include "kk_pre_check.h"

namespace rwkv7_ops {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> kk_pre_meta(const at::Tensor& k, const at::Tensor& a_in,
                                                           const at::Tensor& a0, const at::Tensor& k_k,
                                                           const at::Tensor& k_a, int64_t H) {
  check_kk_pre("rwkv7::kk_pre (Meta)", k, a_in, a0, k_k, k_a, H);
  auto like_k = [&] { return at::empty(k.sizes(), k.options()); };
  return {like_k(), like_k(), like_k()};  // k_out, neg_kk, kk_a: [B, T, C]
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> kk_pre_backward_meta(
    const at::Tensor& k, const at::Tensor& a_in, const at::Tensor& a0, const at::Tensor& k_k, const at::Tensor& k_a,
    int64_t H, const at::Tensor& dk_out, const at::Tensor& dneg_kk, const at::Tensor& dkk_a) {
  const char* op = "rwkv7::kk_pre_backward (Meta)";
  check_kk_pre(op, k, a_in, a0, k_k, k_a, H);
  check_kk_pre_output_grads(op, k, dk_out, dneg_kk, dkk_a);
  auto like_k = [&] { return at::empty(k.sizes(), k.options()); };
  auto per_channel = [&] { return at::empty(a0.sizes(), a0.options()); };
  return {like_k(), like_k(), per_channel(), per_channel(), per_channel()};  // dk, da_in [B, T, C]; da0, dk_k, dk_a [C]
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, Meta, m) {
  m.impl("kk_pre", &kk_pre_meta);
  m.impl("kk_pre_backward", &kk_pre_backward_meta);
}

}  // namespace rwkv7_ops
