#include "rwkv7/model_config.h"

#include <cmath>
#include <stdexcept>

namespace rwkv7 {

void ModelShape::validate() const {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
  };
  need(n_layer >= 1, "n_layer must be >= 1, got " + std::to_string(n_layer));
  need(n_embd >= 1, "n_embd must be >= 1, got " + std::to_string(n_embd));
  need(vocab_size >= 1, "vocab_size must be >= 1, got " + std::to_string(vocab_size));
  need(head_size >= 1, "head_size must be >= 1, got " + std::to_string(head_size));
  need(n_embd % head_size == 0, "n_embd (" + std::to_string(n_embd) +
                                    ") must be a multiple of head_size (" +
                                    std::to_string(head_size) + ")");
  need(dim_ffn >= 1, "dim_ffn must be >= 1, got " + std::to_string(dim_ffn));
  need(d_decay >= 1 && d_aaa >= 1 && d_mv >= 1 && d_gate >= 1, "LoRA widths must be >= 1");
}

int64_t seed_lora_width(double factor, int64_t n_embd) {
  const double x = factor * std::sqrt(static_cast<double>(n_embd)) / 32.0;
  const int64_t rounded = static_cast<int64_t>(std::nearbyint(x));  // ties to even, like round()
  return std::max<int64_t>(32, rounded * 32);
}

ModelShape seed_shape(int64_t n_layer, int64_t n_embd, int64_t vocab_size, int64_t head_size) {
  ModelShape s;
  s.n_layer = n_layer;
  s.n_embd = n_embd;
  s.vocab_size = vocab_size;
  s.head_size = head_size;
  s.dim_ffn = 4 * n_embd;
  s.d_decay = seed_lora_width(2.5, n_embd);
  s.d_aaa = seed_lora_width(2.5, n_embd);
  s.d_mv = seed_lora_width(1.7, n_embd);
  s.d_gate = seed_lora_width(5.0, n_embd);
  return s;
}

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

}  // namespace rwkv7
