// The four standard layers the model uses, as small modules whose parameters are created
// with caller-chosen TensorOptions (so a model can be laid out on the meta device without
// memory, and no time goes into default inits that init.cpp overwrites anyway). Parameter
// names are PyTorch's: weight, bias.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "rwkv7/model/adapter_math.h"

namespace rwkv7 {

// y = x W^T   (W: [out, in]), plus the fine-tuning adapter RWKV-PEFT may add (rwkv7/peft/adapters.h
// creates them, under RWKV-PEFT's names; the math: adapter_math.h):
//   LoRA / PiSSA:  lora_A [r, in], lora_B [out, r]        DiSHA (bone):  disha [r, out]
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, const at::TensorOptions& o) {
    weight = register_parameter("weight", at::zeros({out, in}, o));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = at::linear(x, weight);
    if (lora_A.defined())
      y = y + adapter_math::lora_forward(x, lora_A, lora_B, lora_scale, lora_dropout, is_training());
    if (disha.defined()) y = y + adapter_math::disha_forward(x, disha);
    return y;
  }
  at::Tensor weight;
  at::Tensor lora_A, lora_B, disha;  // undefined unless fine-tuning adds them
  double lora_scale = 1.0, lora_dropout = 0.0;
};
TORCH_MODULE(Linear);

// LayerNorm over the last dimension (eps 1e-5), affine.
class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, const at::TensorOptions& o) {
    weight = register_parameter("weight", at::ones({dim}, o));
    bias = register_parameter("bias", at::zeros({dim}, o));
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::layer_norm(x, {weight.size(0)}, weight, bias, 1e-5);
  }
  at::Tensor weight, bias;
};
TORCH_MODULE(LayerNorm);

// GroupNorm of [rows, C] in `groups` groups, affine.
class GroupNormImpl : public torch::nn::Module {
 public:
  GroupNormImpl(int64_t groups, int64_t dim, double eps, const at::TensorOptions& o)
      : groups(groups), eps(eps) {
    weight = register_parameter("weight", at::ones({dim}, o));
    bias = register_parameter("bias", at::zeros({dim}, o));
  }
  at::Tensor forward(const at::Tensor& x) { return at::group_norm(x, groups, weight, bias, eps); }
  int64_t groups;
  double eps;
  at::Tensor weight, bias;
};
TORCH_MODULE(GroupNorm);

// Token id -> row of weight [V, C].
class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t vocab, int64_t dim, const at::TensorOptions& o) {
    weight = register_parameter("weight", at::zeros({vocab, dim}, o));
  }
  at::Tensor forward(const at::Tensor& idx) { return at::embedding(weight, idx); }
  at::Tensor weight;
};
TORCH_MODULE(Embedding);

}  // namespace rwkv7
