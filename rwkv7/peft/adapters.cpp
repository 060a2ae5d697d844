#include "rwkv7/peft/adapters.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "rwkv7/io/value_checks.h"
#include "rwkv7/peft/peft_names.h"
#include "rwkv7/peft/pissa_start.h"

#include <cmath>
#include <map>
#include <set>
#include <vector>

namespace rwkv7 {

namespace {

// The layers RWKV-PEFT puts an adapter on (its LORA_CONFIG parts att and ffn), with their names.
std::vector<std::pair<std::string, Linear>> adapted_layers(RWKV& model) {
  std::vector<std::pair<std::string, Linear>> out;
  for (auto& block : model->block_list) {
    const std::string b = "blocks." + std::to_string(block->layer_id) + ".";
    out.emplace_back(b + "att.receptance", block->att->receptance);
    out.emplace_back(b + "att.key", block->att->key);
    out.emplace_back(b + "att.value", block->att->value);
    out.emplace_back(b + "att.output", block->att->output);
    out.emplace_back(b + "ffn.key", block->ffn->key);
    out.emplace_back(b + "ffn.value", block->ffn->value);
  }
  return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

using peft_names::is_adapter;

// Orthonormal columns spanning M's ([m, k], k <= m).
at::Tensor orthonormal_basis(const at::Tensor& M) { return std::get<0>(at::linalg_qr(M)); }

// Rank-r SVD of W [m, n] by randomized subspace iteration (Halko, Martinsson, Tropp 2011, as
// torch.svd_lowrank): Q spans W R for a Gaussian R, refined `niter` times through W^T and W;
// then the exact SVD of the small Q^T W. Returns U [m, r], S [r], V [n, r].
std::tuple<at::Tensor, at::Tensor, at::Tensor> randomized_svd(const at::Tensor& W, int64_t r, int64_t niter,
                                                             at::Generator& gen) {
  const at::Tensor Wd = W.to(at::kDouble);
  at::Tensor Q = orthonormal_basis(at::matmul(Wd, at::randn({Wd.size(1), r}, gen, at::kDouble)));
  for (int64_t i = 0; i < niter; ++i) {
    Q = orthonormal_basis(at::matmul(Wd.t(), Q));
    Q = orthonormal_basis(at::matmul(Wd, Q));
  }
  auto [Ub, S, Vh] = at::linalg_svd(at::matmul(Q.t(), Wd), /*full_matrices=*/false);
  return {at::matmul(Q, Ub), S, Vh.t()};
}

}  // namespace

// PiSSA's start of `module` in an init file, with the shape this model needs.
at::Tensor pissa_start_of(const StateDict& file, const std::string& path, const std::string& module, const char* which,
                          at::IntArrayRef shape) {
  const at::Tensor& t = pissa_start_tensor(file, path, module, which);
  if (t.sizes() != shape)
    throw CheckpointError(fmt::format("{}: {}.init_{} is {}, this model needs {} (the init of another model or rank?)",
                                      path, module, which, c10::str(t.sizes()), c10::str(shape)));
  return t;
}

StateDict add_adapters(RWKV& model, const PeftOptions& cfg, uint64_t seed, const StateDict* pissa_start,
                       const std::string& pissa_start_path) {
  StateDict pissa_init;
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  if (cfg.state_tuning()) {
    for (auto& block : model->block_list)
      if (!block->att->time_state.defined()) block->att->add_time_state();  // (a merged state goes on from its own)
  }
  if (!cfg.adapter()) return pissa_init;
  for (auto& [name, layer] : adapted_layers(model)) {
    const at::Tensor& W = layer->weight;  // [out, in]
    const int64_t out = W.size(0), in = W.size(1);
    if (cfg.peft == PeftKind::lora) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));  // kaiming_uniform_(a = sqrt 5)
      layer->lora_A = layer->register_parameter("lora_A", at::empty({cfg.lora_r, in}, W.options()).uniform_(-bound, bound, gen));
      layer->lora_B = layer->register_parameter("lora_B", at::zeros({out, cfg.lora_r}, W.options()));
      layer->lora_scale = cfg.lora_alpha / static_cast<double>(cfg.lora_r);
      layer->lora_dropout = cfg.lora_dropout;
    } else if (cfg.peft == PeftKind::disha) {
      if (in % cfg.disha_r != 0)
        throw ConfigError(fmt::format("key 'disha_r': {} does not divide {}'s input width {}", cfg.disha_r, name, in));
      layer->disha = layer->register_parameter("disha", at::zeros({cfg.disha_r, out}, W.options()));
    } else {  // pissa: the principal part of W becomes the trained B A, the rest stays frozen
      const int64_t r = cfg.pissa_r;
      if (r > std::min(in, out))
        throw ConfigError(fmt::format("key 'pissa_r': {} is more than {}'s rank bound {}", r, name, std::min(in, out)));
      at::Tensor A, B;
      if (pissa_start != nullptr) {
        A = pissa_start_of(*pissa_start, pissa_start_path, name, "lora_A", {r, in}).to(W.options());
        B = pissa_start_of(*pissa_start, pissa_start_path, name, "lora_B", {out, r}).to(W.options());
      } else {
        auto [U, S, V] = randomized_svd(W, r, cfg.svd_niter, gen);
        const at::Tensor root = S.sqrt();
        A = (root.unsqueeze(1) * V.t()).to(W.scalar_type());  // [r, in]
        B = (U * root.unsqueeze(0)).to(W.scalar_type());       // [out, r]
      }
      layer->weight.sub_(at::matmul(B, A));
      layer->lora_A = layer->register_parameter("lora_A", A.clone());
      layer->lora_B = layer->register_parameter("lora_B", B.clone());
      layer->lora_scale = 1.0;
      layer->lora_dropout = 0.0;
      pissa_init.emplace_back(name + ".init_lora_A", A.clone());
      pissa_init.emplace_back(name + ".init_lora_B", B.clone());
    }
  }
  return pissa_init;
}

bool is_trained(const std::string& name, const PeftOptions& cfg) {
  if (cfg.state_tuning()) return peft_names::is_time_state(name);
  if (!cfg.adapter()) return true;  // full training
  if (is_adapter(name)) return true;
  for (const std::string& part : cfg.train_parts)
    if (contains(name, part)) return true;
  return false;
}

int64_t freeze_all_but_trained(RWKV& model, const PeftOptions& cfg) {
  int64_t trained = 0;
  for (auto& p : model->named_parameters()) {
    const bool train = is_trained(p.key(), cfg);
    p.value().set_requires_grad(train);
    if (train) trained += p.value().numel();
  }
  return trained;
}

StateDict trained_tensors(const RWKV& model, const PeftOptions& cfg) {
  StateDict out;
  for (const auto& p : model->named_parameters())
    if (is_trained(p.key(), cfg)) out.emplace_back(p.key(), p.value());
  return out;
}

void load_trained_tensors(RWKV& model, const StateDict& adapter, const PeftOptions& cfg, const std::string& path) {
  check_float_weights(adapter, path);
  auto params = model->named_parameters();
  std::set<std::string> given;
  for (const auto& [name, t] : adapter) {
    const at::Tensor* p = params.find(name);
    if (p == nullptr || !is_trained(name, cfg))
      throw CheckpointError(fmt::format("{}: {} is not a tensor this run trains (an adapter of another kind or "
                                        "model? this run: train_type {}, peft {})",
                                        path, name, name_of(cfg.train_type), name_of(cfg.peft)));
    if (t.sizes() != p->sizes())
      throw CheckpointError(fmt::format("{}: {} is {}, this model needs {} (an adapter for another model size or rank?)",
                                        path, name, c10::str(t.sizes()), c10::str(p->sizes())));
    given.insert(name);
  }
  for (const auto& p : params)
    if (is_adapter(p.key()) && !given.count(p.key()))
      throw CheckpointError(fmt::format("{}: {} is missing (an adapter of another kind or model?)", path, p.key()));
  at::NoGradGuard no_grad;
  for (const auto& [name, t] : adapter) params[name].copy_(t);
}

}  // namespace rwkv7
