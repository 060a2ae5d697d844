// The four standard layers the model uses, as small modules whose parameters are created
// with caller-chosen TensorOptions (so a model can be laid out on the meta device without
// memory, and no time goes into default inits that init.cpp overwrites anyway). Parameter
// names are PyTorch's: weight, bias.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <vector>

namespace rwkv7 {

// y = x W^T   (W: [out, in]), plus the fine-tuning adapter RWKV-PEFT may add (rwkv7/peft/adapters.h
// creates them, under RWKV-PEFT's names):
//   LoRA / PiSSA:  y += scale * B A dropout(x)          lora_A [r, in], lora_B [out, r]
//   DiSHA (bone):  y += (sum over blocks of x.view(in / r, r)) disha      disha [r, out]
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, const at::TensorOptions& o) {
    weight = register_parameter("weight", at::zeros({out, in}, o));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = at::linear(x, weight);
    if (lora_A.defined()) {
      const at::Tensor xd = lora_dropout > 0 ? at::dropout(x, lora_dropout, is_training()) : x;
      y = y + at::linear(at::linear(xd, lora_A), lora_B) * lora_scale;
    }
    if (disha.defined()) {
      const int64_t r = disha.size(0);
      std::vector<int64_t> blocks(x.sizes().begin(), x.sizes().end() - 1);
      blocks.push_back(x.size(-1) / r);
      blocks.push_back(r);
      y = y + at::matmul(x.reshape(blocks).sum(-2), disha);
    }
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
