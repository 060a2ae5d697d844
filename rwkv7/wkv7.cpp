#include "rwkv7/wkv7.h"

#include <ATen/core/dispatch/Dispatcher.h>

namespace rwkv7 {

at::Tensor wkv7(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("rwkv7::wkv7", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  return op.call(r, w, k, v, a, b);
}

}  // namespace rwkv7
