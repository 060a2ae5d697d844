// One way from a checkpoint to a model: train, logits, generate and eval all build a saved
// model through here, so a checkpoint means the same model everywhere.
#pragma once
#include <string>

#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/model.h"
#include "rwkv7/model/model_config.h"

namespace rwkv7 {

// The shape a checkpoint's tensors imply (released models have other LoRA and FFN widths than
// the seed's formula). Throws CheckpointError when a tensor the model needs is missing.
ModelShape shape_from_state_dict(const StateDict& dict, const std::string& path = "");

// The model `dict` holds, built to its shape and loaded (fp32, CPU; move it afterwards).
// Throws CheckpointError naming `path` for anything missing, unexpected or mis-shaped.
RWKV model_from_state_dict(const StateDict& dict, const std::string& path = "");

// read_weights(path) (.pth or .safetensors), then model_from_state_dict.
RWKV load_model(const std::string& path);

}  // namespace rwkv7
