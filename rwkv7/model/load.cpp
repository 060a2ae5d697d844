#include "rwkv7/model/load.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "rwkv7/io/safetensors.h"
#include "rwkv7/io/value_checks.h"

namespace rwkv7 {

namespace {

// A file of fine-tuning tensors alone (an adapter or a tuned state) given where a model belongs.
void refuse_fine_tuning_file(const StateDict& d, const std::string& path) {
  auto ends = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const auto& kv : d) {
    if (ends(kv.first, ".time_state"))
      throw CheckpointError(fmt::format("{}: holds {} and no model weights: it is a tuned state, not a model; give "
                                        "it as --state beside the base model, or merge it (rwkv7 merge)", path, kv.first));
    if (ends(kv.first, ".lora_A") || ends(kv.first, ".lora_B") || ends(kv.first, ".disha"))
      throw CheckpointError(fmt::format("{}: holds {} and no model weights: it is an adapter, not a model; merge it "
                                        "into its base (rwkv7 merge), or fine-tune on from it with lora_load", path,
                                        kv.first));
  }
}
}  // namespace

ModelShape shape_from_state_dict(const StateDict& d, const std::string& path) {
  ModelShape s;
  const at::Tensor& emb = find_tensor(d, "emb.weight", path);
  if (emb.dim() != 2) throw CheckpointError(path + ": emb.weight is not 2-D");
  s.vocab_size = emb.size(0);
  s.n_embd = emb.size(1);
  while (has_tensor(d, "blocks." + std::to_string(s.n_layer) + ".ln1.weight")) ++s.n_layer;
  if (s.n_layer == 0) throw CheckpointError(path + ": no blocks.0.* tensors");
  const at::Tensor& r_k = find_tensor(d, "blocks.0.att.r_k", path);
  if (r_k.dim() != 2) throw CheckpointError(path + ": blocks.0.att.r_k is not [H, N]");
  s.head_size = r_k.size(1);
  s.dim_ffn = find_tensor(d, "blocks.0.ffn.key.weight", path).size(0);
  s.d_decay = find_tensor(d, "blocks.0.att.w1", path).size(1);
  s.d_aaa = find_tensor(d, "blocks.0.att.a1", path).size(1);
  s.d_gate = find_tensor(d, "blocks.0.att.g1", path).size(1);
  const std::string v1 = s.n_layer > 1 ? "blocks.1.att.v1" : "blocks.0.att.v1";
  s.d_mv = has_tensor(d, v1) ? find_tensor(d, v1, path).size(1) : seed_lora_width(1.7, s.n_embd);
  s.layer0_value_residual = has_tensor(d, "blocks.0.att.v1");
  return s;
}

RWKV model_from_state_dict(const StateDict& dict, const std::string& path) {
  if (!has_tensor(dict, "emb.weight")) refuse_fine_tuning_file(dict, path);
  check_float_weights(dict, path);
  RWKV model(shape_from_state_dict(dict, path));
  // A base merged with a tuned state (RWKV-PEFT's merge_state: the base plus each layer's
  // time_state) is that model starting from those states: every layer's, as --state asks.
  std::string with, without;
  for (auto& block : model->block_list) {
    const std::string name = "blocks." + std::to_string(block->layer_id) + ".att.time_state";
    if (has_tensor(dict, name)) {
      block->att->add_time_state();
      if (with.empty()) with = name;
    } else if (without.empty()) {
      without = name;
    }
  }
  if (!with.empty() && !without.empty())
    throw CheckpointError(fmt::format("{}: has {} but no {}: a model merged with a tuned state has one per layer (a "
                                      "state tuned for a model of fewer layers?)", path, with, without));
  model->load_state_dict(dict, path);
  return model;
}

RWKV load_model(const std::string& path) { return model_from_state_dict(read_weights(path), path); }

}  // namespace rwkv7
