#include "rwkv7/model/load.h"

#include <ATen/ATen.h>

#include "rwkv7/io/safetensors.h"

namespace rwkv7 {

namespace {
bool has(const StateDict& d, const std::string& name) {
  for (const auto& kv : d)
    if (kv.first == name) return true;
  return false;
}
}  // namespace

ModelShape shape_from_state_dict(const StateDict& d, const std::string& path) {
  ModelShape s;
  const at::Tensor& emb = find_tensor(d, "emb.weight", path);
  if (emb.dim() != 2) throw CheckpointError(path + ": emb.weight is not 2-D");
  s.vocab_size = emb.size(0);
  s.n_embd = emb.size(1);
  while (has(d, "blocks." + std::to_string(s.n_layer) + ".ln1.weight")) ++s.n_layer;
  if (s.n_layer == 0) throw CheckpointError(path + ": no blocks.0.* tensors");
  const at::Tensor& r_k = find_tensor(d, "blocks.0.att.r_k", path);
  if (r_k.dim() != 2) throw CheckpointError(path + ": blocks.0.att.r_k is not [H, N]");
  s.head_size = r_k.size(1);
  s.dim_ffn = find_tensor(d, "blocks.0.ffn.key.weight", path).size(0);
  s.d_decay = find_tensor(d, "blocks.0.att.w1", path).size(1);
  s.d_aaa = find_tensor(d, "blocks.0.att.a1", path).size(1);
  s.d_gate = find_tensor(d, "blocks.0.att.g1", path).size(1);
  const std::string v1 = s.n_layer > 1 ? "blocks.1.att.v1" : "blocks.0.att.v1";
  s.d_mv = has(d, v1) ? find_tensor(d, v1, path).size(1) : seed_lora_width(1.7, s.n_embd);
  s.layer0_value_residual = has(d, "blocks.0.att.v1");
  return s;
}

RWKV model_from_state_dict(const StateDict& dict, const std::string& path) {
  RWKV model(shape_from_state_dict(dict, path));
  // A base merged with a tuned state (RWKV-PEFT's merge_state: the base plus each layer's
  // time_state) is that model starting from those states.
  for (auto& block : model->block_list)
    if (has(dict, "blocks." + std::to_string(block->layer_id) + ".att.time_state")) block->att->add_time_state();
  model->load_state_dict(dict, path);
  return model;
}

RWKV load_model(const std::string& path) { return model_from_state_dict(read_weights(path), path); }

}  // namespace rwkv7
