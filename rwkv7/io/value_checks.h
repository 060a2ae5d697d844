// Checks on the values of a dict of weights before it is written or merged: a NaN or inf in a
// weight spreads to every output, and a cast to a narrower float type turns large values into inf
// without a word. Each refusal is a CheckpointError naming the file, the tensor and the value.
#pragma once
#include <c10/core/ScalarType.h>

#include <string>

#include "rwkv7/io/checkpoint.h"

namespace rwkv7 {

// Every floating tensor of `dict` is finite; else throws naming `path`, the tensor and the value.
void check_finite(const StateDict& dict, const std::string& path);

// Every floating tensor's values fit `target` (|x| <= its largest finite value); else throws
// naming `path`, the tensor, the value and the limit.
void check_fits_dtype(const StateDict& dict, at::ScalarType target, const std::string& path);

// Every tensor of a model's weights is floating (an int tensor of the same byte size would be
// cast to float and run on as garbage); else throws naming `path` and the tensor.
void check_float_weights(const StateDict& dict, const std::string& path);

}  // namespace rwkv7
