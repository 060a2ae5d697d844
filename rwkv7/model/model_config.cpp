#include "rwkv7/model/model_config.h"

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

}  // namespace rwkv7
