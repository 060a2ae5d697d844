// The token shift both mixes use: the previous position's features beside the current ones.
#pragma once
#include <ATen/core/Tensor.h>

namespace rwkv7 {

// shift(x)[t] = x[t-1] over the time axis of [B, T, C]; x[-1] is 0, or *prev (then set to the
// last row of x, for the next call: RNN mode). With `resets` ([B, T] bool) defined, shift(x)[t]
// is 0 wherever resets[b, t]: a packed document's first token looks back at nothing.
at::Tensor token_shift(const at::Tensor& x, at::Tensor* prev = nullptr, const at::Tensor& resets = {});

}  // namespace rwkv7
