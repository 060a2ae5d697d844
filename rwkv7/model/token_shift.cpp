#include "rwkv7/model/token_shift.h"

#include <ATen/ATen.h>

namespace rwkv7 {

at::Tensor token_shift(const at::Tensor& x, at::Tensor* prev, const at::Tensor& resets) {
  at::Tensor shifted;
  if (!prev) {
    shifted = at::constant_pad_nd(x, {0, 0, 1, -1});
  } else {
    shifted = at::cat({prev->unsqueeze(1), x.slice(1, 0, x.size(1) - 1)}, 1);
    *prev = x.select(1, x.size(1) - 1);
  }
  return resets.defined() ? shifted.masked_fill(resets.unsqueeze(-1), 0) : shifted;
}

}  // namespace rwkv7
