// The shape of an RWKV-7 (x070) model: everything needed to build its modules.
#pragma once
#include <cstdint>
#include <string>

namespace rwkv7 {

struct ModelShape {
  int64_t n_layer = 0;
  int64_t n_embd = 0;      // C
  int64_t vocab_size = 0;  // V
  int64_t head_size = 64;  // N; H = C / N heads
  int64_t dim_ffn = 0;     // channel-mix hidden width (the seed: 4 C)
  // LoRA widths of the decay (w), in-context rate (a), value residual (v) and gate (g).
  int64_t d_decay = 0, d_aaa = 0, d_mv = 0, d_gate = 0;
  // Layer 0 never uses v0/v1/v2; inference checkpoints may leave them out.
  bool layer0_value_residual = true;

  int64_t n_head() const { return n_embd / head_size; }
  // Throws std::invalid_argument naming the field that is wrong.
  void validate() const;
};

// The seed's LoRA width: max(32, round(factor * sqrt(C) / 32) * 32), Python's round
// (half to even).
int64_t seed_lora_width(double factor, int64_t n_embd);

// The seed's shape for a new model: LoRA widths from its formula, FFN 4 C.
ModelShape seed_shape(int64_t n_layer, int64_t n_embd, int64_t vocab_size, int64_t head_size = 64);

}  // namespace rwkv7
