// What fine-tuning needs to know of a run: the kind of adapter and its few settings. The training
// config fills it (TrainConfig::peft_options()); the peft layer reads nothing else of the run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rwkv7/util/named_enum.h"

namespace rwkv7 {

// train_type: state trains each layer's initial WKV state and nothing else.
enum class TrainType { none, state };
// peft: the adapter on the linear layers.
enum class PeftKind { none, lora, disha, pissa };
// DiSHA's modes; RWKV-PEFT trains only bone for RWKV-7.
enum class DishaMode { bone };

template <>
struct EnumNames<TrainType> {
  static constexpr std::pair<TrainType, const char*> rows[] = {{TrainType::none, "none"}, {TrainType::state, "state"}};
};
template <>
struct EnumNames<PeftKind> {
  static constexpr std::pair<PeftKind, const char*> rows[] = {
      {PeftKind::none, "none"}, {PeftKind::lora, "lora"}, {PeftKind::disha, "disha"}, {PeftKind::pissa, "pissa"}};
};
template <>
struct EnumNames<DishaMode> {
  static constexpr std::pair<DishaMode, const char*> rows[] = {{DishaMode::bone, "bone"}};
};

// What a fine-tuning run trains, as one kind: the state, or one of the adapters.
enum class AdapterKind { state, lora, disha, pissa };
template <>
struct EnumNames<AdapterKind> {
  static constexpr std::pair<AdapterKind, const char*> rows[] = {
      {AdapterKind::state, "state"}, {AdapterKind::lora, "lora"}, {AdapterKind::disha, "disha"}, {AdapterKind::pissa, "pissa"}};
};
// "state", "LoRA", "DiSHA", "PiSSA": a kind as the docs write it
inline const char* adapter_title(AdapterKind kind) {
  switch (kind) {
    case AdapterKind::lora: return "LoRA";
    case AdapterKind::disha: return "DiSHA";
    case AdapterKind::pissa: return "PiSSA";
    default: return "state";
  }
}

struct PeftOptions {
  TrainType train_type = TrainType::none;
  PeftKind peft = PeftKind::none;
  int64_t lora_r = 8;
  double lora_alpha = 32;
  double lora_dropout = 0.01;
  int64_t disha_r = 64;
  int64_t pissa_r = 8;
  int64_t svd_niter = 4;
  std::vector<std::string> train_parts = {"ln"};  // base tensors trained beside an adapter (name contains)

  bool state_tuning() const { return train_type == TrainType::state; }
  bool adapter() const { return peft != PeftKind::none; }
  bool fine_tuning() const { return state_tuning() || adapter(); }
  // The kind a fine-tuning run trains (state tuning, else the adapter).
  AdapterKind kind() const {
    return state_tuning() ? AdapterKind::state : peft == PeftKind::lora ? AdapterKind::lora
                          : peft == PeftKind::disha ? AdapterKind::disha : AdapterKind::pissa;
  }
  // The rank the kind uses (lora_r, disha_r or pissa_r); 0 for the state.
  int64_t rank() const {
    const AdapterKind k = kind();
    return k == AdapterKind::lora ? lora_r : k == AdapterKind::disha ? disha_r : k == AdapterKind::pissa ? pissa_r : 0;
  }
};

}  // namespace rwkv7
