// The four standard layers the model uses, as small modules whose parameters are created
// with caller-chosen TensorOptions (so a model can be laid out on the meta device without
// memory, and no time goes into default inits that init.cpp overwrites anyway). Parameter
// names are PyTorch's: weight, bias.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace rwkv7 {

// y = x W^T   (W: [out, in])
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, const at::TensorOptions& o) {
    weight = register_parameter("weight", at::zeros({out, in}, o));
  }
  at::Tensor forward(const at::Tensor& x) { return at::linear(x, weight); }
  at::Tensor weight;
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
