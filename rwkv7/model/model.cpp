#include "rwkv7/model/model.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <map>
#include <mutex>
#include <set>

namespace rwkv7 {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Gradient checkpointing of one block (what the seed's grad_cp=1 does with DeepSpeed):
// the forward runs without building a graph; the backward runs the block again with grad
// enabled and back-propagates through that fresh graph (parameters' .grad accumulate there).
// The recompute must draw what the forward drew (LoRA's dropout masks): the forward keeps the
// device generator's state, the backward replays from it and then puts the generator back where
// it was, as torch.utils.checkpoint's preserve_rng_state does.
class CheckpointedBlock : public torch::autograd::Function<CheckpointedBlock> {
 public:
  static variable_list forward(AutogradContext* ctx, int64_t model_address, int64_t layer,
                               const at::Tensor& x, const at::Tensor& v_first, const at::Tensor& resets) {
    ctx->saved_data["model"] = model_address;
    ctx->saved_data["layer"] = layer;
    ctx->save_for_backward({x, v_first});
    // (no restarts arrive as an empty mask: a Function's tensor inputs must all be defined)
    const at::Tensor mask = resets.numel() > 0 ? resets : at::Tensor();
    if (mask.defined()) ctx->saved_data["resets"] = mask;
    ctx->saved_data["rng"] = generator_state(x.device());
    auto [y, vf] = block_of(ctx)(x, v_first, nullptr, mask);  // Function::apply runs this without grad
    return {y, vf};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    Block block = block_of(ctx);
    const bool layer0 = block->layer_id == 0;  // layer 0 makes v_first instead of reading it
    at::Tensor x = saved[0].detach().requires_grad_(true);
    at::Tensor v_first = layer0 ? saved[1] : saved[1].detach().requires_grad_(true);
    at::AutoGradMode enable(true);
    const at::Tensor now = generator_state(x.device());
    set_generator_state(x.device(), ctx->saved_data["rng"].toTensor());
    const at::Tensor resets =
        ctx->saved_data.count("resets") ? ctx->saved_data["resets"].toTensor() : at::Tensor();
    RWKVImpl* model = reinterpret_cast<RWKVImpl*>(ctx->saved_data["model"].toInt());
    if (model->gathering) model->gathering->before(block->layer_id, /*backward=*/true);
    auto [y, vf] = block(x, v_first, nullptr, resets);
    set_generator_state(x.device(), now);
    std::vector<at::Tensor> outs{y}, gouts{grads[0]};
    if (grads[1].defined() && vf.requires_grad()) {
      outs.push_back(vf);
      gouts.push_back(grads[1]);
    }
    torch::autograd::backward(outs, gouts);
    if (model->gathering) model->gathering->after(block->layer_id, /*backward=*/true);
    return {at::Tensor(), at::Tensor(), x.grad(), layer0 ? at::Tensor() : v_first.grad(), at::Tensor()};
  }

 private:
  static at::Tensor generator_state(const c10::Device& device) {
    at::Generator g = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(g.mutex());
    return g.get_state();
  }
  static void set_generator_state(const c10::Device& device, const at::Tensor& state) {
    at::Generator g = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(state);
  }
  static Block block_of(AutogradContext* ctx) {
    auto* model = reinterpret_cast<RWKVImpl*>(ctx->saved_data["model"].toInt());
    return model->block_list.at(ctx->saved_data["layer"].toInt());
  }
};

}  // namespace

RWKVImpl::RWKVImpl(const ModelShape& s, const at::TensorOptions& o) : shape(s) {
  s.validate();
  emb = register_module("emb", Embedding(s.vocab_size, s.n_embd, o));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t l = 0; l < s.n_layer; ++l) {
    block_list.push_back(Block(s, l, o));
    blocks->push_back(block_list.back());
  }
  ln_out = register_module("ln_out", LayerNorm(s.n_embd, o));
  head = register_module("head", Linear(s.n_embd, s.vocab_size, o));
}

at::Tensor RWKVImpl::forward(const at::Tensor& idx) { return head(hidden(idx)); }

// ZeRO-3: the embedding's weight is not needed by its backward (a scatter of the gradient by
// token id), so it goes right after the lookup.
at::Tensor RWKVImpl::embed(const at::Tensor& idx) {
  if (!gathering) return emb(idx);
  gathering->before(WeightGathering::kEmbedding, false);
  at::Tensor x = emb(idx);
  gathering->after(WeightGathering::kEmbedding, false);
  return x;
}

// ZeRO-3: a block computed without a graph (checkpointed, or no grad) lets its weights go at once;
// one whose graph saved them keeps them until their gradients are accumulated.
std::pair<at::Tensor, at::Tensor> RWKVImpl::run_block(Block& block, const at::Tensor& x, const at::Tensor& v_first,
                                                      LayerState* state, const at::Tensor& resets, bool checkpointed) {
  if (gathering) gathering->before(block->layer_id, false);
  std::pair<at::Tensor, at::Tensor> out;
  if (checkpointed) {
    auto y = CheckpointedBlock::apply(reinterpret_cast<int64_t>(this), block->layer_id, x, v_first,
                                      resets.defined() ? resets : at::empty({0}, x.options().dtype(at::kBool)));
    out = {y[0], y[1]};
  } else {
    out = block(x, v_first, state, resets);
  }
  if (gathering && (checkpointed || !at::GradMode::is_enabled())) gathering->after(block->layer_id, false);
  return out;
}

at::Tensor RWKVImpl::finish(const at::Tensor& x) {
  if (gathering) gathering->before(WeightGathering::head_unit(shape.n_layer), false);
  return ln_out(x);
}

at::Tensor RWKVImpl::hidden(const at::Tensor& idx) {
  TORCH_CHECK(idx.dim() == 2, "RWKV.forward: idx must be [B, T], got rank ", idx.dim());
  at::Tensor x = embed(idx);
  at::Tensor v_first = at::empty_like(x);
  const at::Tensor resets = doc_reset ? idx.eq(0) : at::Tensor();
  // A checkpointed block's backward runs only if its input requires grad. When fine-tuning
  // freezes the embedding, x does not, and no block would get gradients: start the graph here
  // (x has no history to lose), as RWKV-PEFT does for its checkpointed blocks.
  const bool checkpointed = gradient_checkpointing && is_training() && at::GradMode::is_enabled();
  if (checkpointed && !x.requires_grad()) x = x.detach().requires_grad_(true);
  for (auto& block : block_list) std::tie(x, v_first) = run_block(block, x, v_first, nullptr, resets, checkpointed);
  return finish(x);
}

at::Tensor RWKVImpl::hidden(const at::Tensor& idx, ModelState& state) {
  TORCH_CHECK(idx.dim() == 2, "RWKV.hidden: idx must be [B, T], got rank ", idx.dim());
  TORCH_CHECK(state.size() == block_list.size(), "RWKV.hidden: a state of ", state.size(), " layers for a model of ",
              block_list.size());
  at::Tensor x = embed(idx);
  at::Tensor v_first;
  const at::Tensor resets = doc_reset ? idx.eq(0) : at::Tensor();
  for (auto& block : block_list)
    std::tie(x, v_first) = run_block(block, x, v_first, &state[block->layer_id], resets, false);
  return finish(x);
}

void RWKVImpl::use_fused_ops(bool on) {
  for (auto& block : block_list) {
    block->att->fused_ops = on;
    block->ffn->fused_ops = on;
  }
}

StateDict RWKVImpl::state_dict() const {
  StateDict out;
  for (const auto& p : named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

void RWKVImpl::load_state_dict(const StateDict& dict, const std::string& path) {
  std::map<std::string, at::Tensor> given(dict.begin(), dict.end());
  std::vector<std::string> missing, mismatched, unexpected;
  const std::set<std::string> optional = {"blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2"};
  auto params = named_parameters();
  for (const auto& p : params) {
    auto it = given.find(p.key());
    if (it == given.end()) {
      if (!optional.count(p.key())) missing.push_back(p.key());
      continue;
    }
    if (it->second.numel() != p.value().numel() ||
        (it->second.sizes() != p.value().sizes() && it->second.squeeze().sizes() != p.value().squeeze().sizes()))
      mismatched.push_back(fmt::format("{} (file {}, model {})", p.key(),
                                       c10::str(it->second.sizes()), c10::str(p.value().sizes())));
  }
  for (const auto& kv : dict)
    if (!params.contains(kv.first)) unexpected.push_back(kv.first);
  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size() && i < 12; ++i) s += (i ? ", " : "") + v[i];
      if (v.size() > 12) s += fmt::format(", ... ({} in all)", v.size());
      return s;
    };
    std::string msg = (path.empty() ? std::string("checkpoint") : path) + " does not fit the model:";
    if (!missing.empty()) msg += " missing [" + list(missing) + "]";
    if (!mismatched.empty()) msg += " wrong shape [" + list(mismatched) + "]";
    if (!unexpected.empty()) msg += " unexpected [" + list(unexpected) + "]";
    throw CheckpointError(msg);
  }
  at::NoGradGuard no_grad;
  for (auto& p : params) {
    auto it = given.find(p.key());
    if (it != given.end()) p.value().copy_(it->second.reshape(p.value().sizes()));
  }
}

}  // namespace rwkv7
