// RWKV-PEFT's names for what fine-tuning adds to a model, in one place: the checkpoint keys that
// adapters.cpp registers, merge.cpp merges and tuned_state.cpp reads.
//   blocks.<i>.att.time_state   state tuning's initial WKV state, [H, N, N]
//   <module>.lora_A, .lora_B    LoRA and PiSSA
//   <module>.disha              DiSHA (bone)
#pragma once
#include <string>

namespace rwkv7::peft_names {

inline bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

inline bool is_time_state(const std::string& n) { return ends_with(n, ".time_state"); }
inline bool is_lora(const std::string& n) { return ends_with(n, ".lora_A") || ends_with(n, ".lora_B"); }
inline bool is_disha(const std::string& n) { return ends_with(n, ".disha"); }
// a tensor an adapter adds (not one of the base's, like the LayerNorms it may also train)
inline bool is_adapter(const std::string& n) { return is_time_state(n) || is_lora(n) || is_disha(n); }

}  // namespace rwkv7::peft_names
