#include "rwkv7/model/inference.h"

#include <ATen/ATen.h>

namespace rwkv7 {

ModelState zero_state(const RWKV& model, int64_t batch) {
  const ModelShape& s = model->shape;
  const auto o = model->head->weight.options();
  ModelState st;
  for (int64_t l = 0; l < s.n_layer; ++l) {
    // a model with a tuned state (time_state) starts every sequence there
    const at::Tensor& tuned = model->block_list[l]->att->time_state;
    at::Tensor wkv = tuned.defined()
                         ? tuned.detach().to(at::kFloat).unsqueeze(0).expand({batch, -1, -1, -1}).contiguous()
                         : at::zeros({batch, s.n_head(), s.head_size, s.head_size}, o.dtype(at::kFloat));
    st.push_back({at::zeros({batch, s.n_embd}, o), wkv, at::zeros({batch, s.n_embd}, o)});
  }
  return st;
}

at::Tensor forward_with_state(RWKV& model, const at::Tensor& tokens, ModelState& state) {
  at::NoGradGuard no_grad;
  return model->head(model->hidden(tokens, state));
}

}  // namespace rwkv7
