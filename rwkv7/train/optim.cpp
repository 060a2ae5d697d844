#include "rwkv7/train/optim.h"

#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <set>

#include "rwkv7/train/param_groups.h"

namespace rwkv7 {

SeedOptimizer::SeedOptimizer(RWKV& model, const OptimizerSettings& s, std::vector<bool> owned)
    : owned_(std::move(owned)) {
  // Groups in the seed's order: lr x1 (no decay), lr x2 (att.w0), decay.
  std::vector<std::vector<at::Tensor>> groups(3);
  const auto named = model->named_parameters();
  if (owned_.empty()) owned_.assign(named.size(), true);
  for (size_t k = 0; k < named.size(); ++k) {
    const auto& p = named[k];
    names_.push_back(p.key());
    params_.push_back(p.value());
    if (!p.value().requires_grad()) owned_[k] = false;  // frozen (fine-tuning): no master, no moments
    if (!owned_[k]) {
      masters_.push_back(at::Tensor());
      continue;
    }
    const ParamGroupRule rule = seed_param_group(p.key(), p.value(), s.weight_decay);
    const int g = rule.lr_scale == 2.0 ? 1 : rule.weight_decay > 0 ? 2 : 0;
    at::Tensor master = p.value();
    if (master.scalar_type() != at::kFloat) {
      master = p.value().detach().to(at::kFloat).clone().set_requires_grad(true);
    }
    masters_.push_back(master);
    groups[g].push_back(master);
  }
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  const double scales[3] = {1.0, 2.0, 1.0};
  const double decays[3] = {0.0, 0.0, s.weight_decay};
  for (int g = 0; g < 3; ++g) {
    if (groups[g].empty()) continue;
    auto opts = std::make_unique<torch::optim::AdamWOptions>(s.lr * scales[g]);
    opts->betas({s.beta1, s.beta2}).eps(s.eps).weight_decay(decays[g]).amsgrad(false);
    param_groups.emplace_back(groups[g], std::move(opts));
    lr_scale_.push_back(scales[g]);
  }
  adam_ = std::make_unique<torch::optim::AdamW>(param_groups, torch::optim::AdamWOptions(s.lr));
}

SeedOptimizer::~SeedOptimizer() = default;

void SeedOptimizer::set_lr(double lr) {
  auto& groups = adam_->param_groups();
  for (size_t g = 0; g < groups.size(); ++g)
    static_cast<torch::optim::AdamWOptions&>(groups[g].options()).lr(lr * lr_scale_[g]);
}

double SeedOptimizer::clip_gradients(double max_norm,
                                     const std::function<double(double)>& global_sum_of_squares) {
  std::vector<at::Tensor> grads;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!owned_[i]) continue;
    const at::Tensor& g = params_[i].grad();
    if (g.defined() && masters_[i].unsafeGetTensorImpl() != params_[i].unsafeGetTensorImpl())
      masters_[i].mutable_grad() = g.to(at::kFloat);
    if (masters_[i].grad().defined()) grads.push_back(masters_[i].grad());
  }
  // one multi-tensor norm kernel, then the one host read of the step (the norm is logged and
  // decides whether the step is skipped)
  double norm = grads.empty() ? 0.0 : at::stack(at::_foreach_norm(grads, 2)).norm(2).item<double>();
  if (global_sum_of_squares) norm = std::sqrt(global_sum_of_squares(norm * norm));
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0 && std::isfinite(norm) && !grads.empty()) {
    at::NoGradGuard no_grad;
    at::_foreach_mul_(grads, coef);
  }
  return norm;
}

// ATen's fused multi-tensor AdamW (CPU and CUDA kernels), one call per parameter group, on the
// moments LibTorch's AdamW keeps (so its state, save and load stay as they were). Each parameter's
// step count lives on its device as the float tensor the kernel reads, beside the state's int.
void SeedOptimizer::step() {
  at::NoGradGuard no_grad;
  auto& state = adam_->state();
  for (auto& group : adam_->param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = state[p.unsafeGetTensorImpl()];
      if (!slot) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(at::zeros_like(p));
        fresh->exp_avg_sq(at::zeros_like(p));
        slot = std::move(fresh);
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*slot);
      at::Tensor& step_count = step_tensors_[p.unsafeGetTensorImpl()];
      if (!step_count.defined()) step_count = at::full({}, double(s.step()), p.options().dtype(at::kFloat));
      s.step(s.step() + 1);
      params.push_back(p);
      grads.push_back(p.grad());
      exp_avgs.push_back(s.exp_avg());
      exp_avg_sqs.push_back(s.exp_avg_sq());
      steps.push_back(step_count);
    }
    if (params.empty()) continue;
    at::_foreach_add_(steps, 1.0);
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, {}, steps, o.lr(), std::get<0>(o.betas()),
                      std::get<1>(o.betas()), o.weight_decay(), o.eps(), /*amsgrad=*/false, /*maximize=*/false);
  }
  for (size_t i = 0; i < params_.size(); ++i)
    if (owned_[i] && masters_[i].unsafeGetTensorImpl() != params_[i].unsafeGetTensorImpl())
      params_[i].copy_(masters_[i]);
}

void SeedOptimizer::zero_grad() {
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
  for (auto& m : masters_)
    if (m.defined()) m.mutable_grad() = at::Tensor();
}

StateDict SeedOptimizer::state_dict() const {
  StateDict out;
  const auto& st = adam_->state();
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (!owned_[i]) continue;
    auto it = st.find(masters_[i].unsafeGetTensorImpl());
    if (masters_[i].unsafeGetTensorImpl() != params_[i].unsafeGetTensorImpl())
      out.emplace_back("master." + names_[i], masters_[i].detach());
    if (it == st.end()) continue;
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    out.emplace_back("exp_avg." + names_[i], s.exp_avg());
    out.emplace_back("exp_avg_sq." + names_[i], s.exp_avg_sq());
    out.emplace_back("step." + names_[i], at::tensor(s.step(), at::kLong));
  }
  return out;
}

void SeedOptimizer::load_state_dict(const StateDict& state) {
  auto& st = adam_->state();
  step_tensors_.clear();  // made again from the loaded step counts
  std::set<std::string> names;
  for (const auto& kv : state) names.insert(kv.first);
  at::NoGradGuard no_grad;
  // the saved tensor `name`, which must have the shape of parameter i
  auto fitting = [&](const std::string& name, size_t i) -> const at::Tensor& {
    const at::Tensor& t = find_tensor(state, name);
    if (t.sizes() != masters_[i].sizes())
      throw CheckpointError("'" + name + "' has shape " + c10::str(t.sizes()) + ", the model's " + names_[i] +
                            " is " + c10::str(masters_[i].sizes()));
    return t;
  };
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (!owned_[i]) continue;
    const std::string& n = names_[i];
    if (masters_[i].unsafeGetTensorImpl() != params_[i].unsafeGetTensorImpl())
      masters_[i].copy_(fitting("master." + n, i));
    if (!names.count("exp_avg." + n)) continue;  // never stepped (e.g. layer 0's unused v0/v1/v2)
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->exp_avg(fitting("exp_avg." + n, i).to(masters_[i].options()).clone());
    s->exp_avg_sq(fitting("exp_avg_sq." + n, i).to(masters_[i].options()).clone());
    s->step(find_tensor(state, "step." + n).item<int64_t>());
    st[masters_[i].unsafeGetTensorImpl()] = std::move(s);
  }
}

}  // namespace rwkv7
