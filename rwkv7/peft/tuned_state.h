// A tuned state as the start of inference: RWKV-PEFT's state tuning trains, per layer i,
// blocks.<i>.att.time_state [H, N, N], the WKV state S[value][key] every sequence starts from
// (instead of 0). That is exactly LayerState::wkv of one sample, so running the base model from
// it in RNN mode (forward_with_state) gives the tuned model's numbers; the token-shift states
// still start at 0, as in RWKV-PEFT.
#pragma once
#include <cstdint>
#include <string>

#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/inference.h"
#include "rwkv7/model/model.h"

namespace rwkv7 {

// The initial state of `batch` sequences from the time_state tensors of `file` (an adapter
// rwkv-<n>.pth, or a model merged with one: other keys are ignored), fp32 on the model's device.
// Every layer must have its own, of shape [H, N, N] for this model; anything else is a
// CheckpointError, one line naming `path` and the tensor.
ModelState tuned_state(const RWKV& model, const StateDict& file, const std::string& path, int64_t batch);

// zero_state when `state_path` is empty, else tuned_state of the file (.pth or .safetensors).
ModelState initial_state(const RWKV& model, const std::string& state_path, int64_t batch);

}  // namespace rwkv7
