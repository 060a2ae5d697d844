// The seed's initial weights (model.py: the module constructors plus generate_init_weight),
// all rules in one place. The deterministic parts match the seed to float rounding; the
// random parts follow the same distributions from our own generator and `seed`.
#pragma once
#include <cstdint>

#include "rwkv7/model/model.h"

namespace rwkv7 {

// Overwrites every parameter of `model` (fp32) with the seed's initial values.
void init_seed_weights(RWKV& model, uint64_t seed);

}  // namespace rwkv7
