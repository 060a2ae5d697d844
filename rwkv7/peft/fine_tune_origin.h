// What a fine-tuning run was started from, saved in its training state (rwkv-<n>.state.pth) and
// checked when it resumes. An adapter resumed on another base model, beside another run's PiSSA
// start, or with another rank or alpha trains on without an error, to a wrong model; the digests
// and settings here turn each of those into a refusal that names the file and the number.
#pragma once
#include <cstdint>
#include <string>

#include "rwkv7/io/checkpoint.h"
#include "rwkv7/peft/peft_options.h"

namespace rwkv7 {

struct FineTuneOrigin {
  int64_t base_digest = 0;       // weights_digest of the base model (load_model) as read
  int64_t pissa_digest = 0;      // weights_digest of PiSSA's start (B0, A0); 0: not PiSSA
  int64_t lora_load_digest = 0;  // weights_digest of lora_load; 0: a fresh adapter
  AdapterKind kind = AdapterKind::state;
  int64_t rank = 0;              // lora_r, disha_r or pissa_r: the one the kind uses
  double lora_alpha = 0;         // LoRA's alpha; 0 for the other kinds

  // "run.ft.*" entries of a training state; load_state_dict throws CheckpointError naming `path`.
  StateDict state_dict() const;
  void load_state_dict(const StateDict& state, const std::string& path);
};

// Whether the state holds an origin (states written before it existed do not).
bool has_origin(const StateDict& state);

// What the files beside an adapter say of the run that made it: the origin in its training state
// (`state_path`, rwkv-<n>.state.pth) when that holds one, and its folder's init_pissa.pth, which
// only a PiSSA run writes ("" when there is none).
struct AdapterEvidence {
  bool has_origin = false;
  FineTuneOrigin origin;
  std::string folder_pissa;
};
AdapterEvidence evidence_beside(const std::string& adapter_path, const std::string& state_path);

// "" when `now` may continue the run `saved` describes; else what differs, naming `base_path`
// (load_model), `pissa_path` and the numbers.
std::string origin_mismatch(const FineTuneOrigin& saved, const FineTuneOrigin& now, const std::string& base_path,
                            const std::string& pissa_path);

}  // namespace rwkv7
