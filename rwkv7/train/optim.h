// The optimizer as the seed runs it (DeepSpeed's FusedAdam through Lightning): Adam with bias
// correction and decoupled weight decay, in the seed's three parameter groups (lr x1; lr x2 for
// att.w0; the decaying matrices), a per-step lr, and global-norm gradient clipping.
//
// When the model computes in bf16, the optimizer keeps fp32 master weights (as DeepSpeed's
// bf16 mode does): gradients are copied up to fp32, the update happens there, and the result
// is rounded back into the model.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/model.h"

namespace torch::optim {
class AdamW;
}

namespace rwkv7 {

struct OptimizerSettings {
  double lr = 6e-4, beta1 = 0.9, beta2 = 0.99, eps = 1e-18, weight_decay = 0.0;
};

class SeedOptimizer {
 public:
  // owned: which parameters (in named_parameters order) this process updates; empty = all.
  // With optimizer sharding (ZeRO stage 1) each rank owns some; only those get state.
  SeedOptimizer(RWKV& model, const OptimizerSettings& settings, std::vector<bool> owned = {});
  ~SeedOptimizer();

  // Every group's lr = lr * its scale (x2 for att.w0).
  void set_lr(double lr);
  // Copies the model's gradients into the fp32 master gradients, returns their global L2
  // norm before clipping, and scales them so the norm is at most `max_norm` (as
  // torch.nn.utils.clip_grad_norm_: coefficient max_norm / (norm + 1e-6) when below 1).
  // `global_sum_of_squares` turns this process's sum of squared gradients into the sum over
  // all shards (sharded optimizer); by default it is the identity.
  double clip_gradients(double max_norm,
                        const std::function<double(double)>& global_sum_of_squares = nullptr);
  // One Adam step on the master weights (ATen's fused AdamW, one call per group); then the
  // model's weights are set from them.
  void step();
  void zero_grad();

  // Optimizer moments and step counts by parameter name (for exact resume).
  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

  size_t size() const { return params_.size(); }
  bool owns(size_t k) const { return owned_[k]; }
  at::Tensor& master(size_t k) { return masters_[k]; }  // fp32; undefined if not owned

 private:
  std::vector<std::string> names_;
  std::vector<at::Tensor> params_;   // the model's
  std::vector<at::Tensor> masters_;  // fp32; the same tensors as params_ when the model is fp32
  std::vector<bool> owned_;
  std::unique_ptr<torch::optim::AdamW> adam_;
  std::vector<double> lr_scale_;     // per group
  std::map<const void*, at::Tensor> step_tensors_;  // per master: its step count, float, on its device
};

}  // namespace rwkv7
