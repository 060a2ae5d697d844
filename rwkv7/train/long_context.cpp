#include "rwkv7/train/long_context.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <mutex>
#include <vector>


namespace rwkv7 {

namespace {

at::Tensor generator_state(const at::Device& device) {
  at::Generator g = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_generator_state(const at::Device& device, const at::Tensor& state) {
  at::Generator g = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

// Applies f to every tensor of a state, layer by layer, in one fixed order.
template <typename F>
ModelState map_state(const ModelState& s, F f) {
  ModelState out;
  for (const LayerState& l : s) out.push_back({f(l.att_x_prev), f(l.wkv), f(l.ffn_x_prev)});
  return out;
}

template <typename F>
void for_each_pair(const ModelState& a, const ModelState& b, F f) {
  for (size_t l = 0; l < a.size(); ++l) {
    f(a[l].att_x_prev, b[l].att_x_prev);
    f(a[l].wkv, b[l].wkv);
    f(a[l].ffn_x_prev, b[l].ffn_x_prev);
  }
}

// A chunk's boundary state as kept between the passes: no graph, and copies (a token-shift state
// is a view of the chunk's activations, which must not stay alive through it).
ModelState kept(const ModelState& s) {
  return map_state(s, [](const at::Tensor& t) { return t.detach().clone(); });
}

double full_bptt(RWKV& model, const at::Tensor& x, const at::Tensor& y, const BatchCounts& n, const LongContextOptions& o) {
  const int64_t B = x.size(0), L = o.chunk_len, chunks = x.size(1) / L;
  auto chunk = [&](const at::Tensor& t, int64_t c) { return t.slice(1, c * L, (c + 1) * L); };
  // forward: each chunk's start state (and generator), nothing else
  std::vector<ModelState> starts;
  std::vector<at::Tensor> draws;
  {
    at::NoGradGuard no_grad;
    ModelState state = training_start_state(model, B);
    for (int64_t c = 0; c < chunks; ++c) {
      starts.push_back(kept(state));
      draws.push_back(generator_state(x.device()));
      model->hidden(chunk(x, c), state);
    }
  }
  const at::Tensor after = generator_state(x.device());
  // backward, last chunk first: recompute the chunk from its start, then back-propagate the
  // chunk's loss together with the gradients of its final states
  double loss = 0;
  ModelState end_grads;  // dL/d(chunk c's final states), from chunk c+1's backward
  for (int64_t c = chunks - 1; c >= 0; --c) {
    set_generator_state(x.device(), draws[c]);
    const ModelState start = c == 0 ? training_start_state(model, B)
                                    : map_state(starts[c], [](const at::Tensor& t) { return t.requires_grad_(true); });
    starts[c].clear();
    ModelState state = start;
    const at::Tensor part = batch_part_loss(model, model->hidden(chunk(x, c), state), chunk(y, c), n, o.loss);
    std::vector<at::Tensor> outputs{part}, grads{at::ones_like(part)};
    if (!end_grads.empty())
      for_each_pair(state, end_grads, [&](const at::Tensor& s, const at::Tensor& g) {
        if (s.requires_grad() && g.defined()) outputs.push_back(s), grads.push_back(g);
      });
    torch::autograd::backward(outputs, grads);
    loss += part.item<double>();
    if (c > 0) end_grads = map_state(start, [](const at::Tensor& t) { return t.grad(); });
  }
  set_generator_state(x.device(), after);
  return loss;
}

double truncated_bptt(RWKV& model, const at::Tensor& x, const at::Tensor& y, const BatchCounts& n,
                      const LongContextOptions& o) {
  const int64_t L = o.chunk_len, chunks = x.size(1) / L;
  double loss = 0;
  ModelState state = training_start_state(model, x.size(0));
  for (int64_t c = 0; c < chunks; ++c) {
    const at::Tensor part =
        batch_part_loss(model, model->hidden(x.slice(1, c * L, (c + 1) * L), state), y.slice(1, c * L, (c + 1) * L), n, o.loss);
    // (state tuning: after chunk 0 nothing trained is upstream of the detached chunks)
    if (part.requires_grad()) part.backward();
    loss += part.item<double>();
    state = kept(state);  // the next chunk starts from the values alone
  }
  return loss;
}

}  // namespace

ModelState training_start_state(RWKV& model, int64_t batch) {
  const ModelShape& s = model->shape;
  const auto o = model->head->weight.options();
  ModelState st;
  for (int64_t l = 0; l < s.n_layer; ++l) {
    const at::Tensor& tuned = model->block_list[l]->att->time_state;
    at::Tensor wkv = tuned.defined() ? tuned.to(at::kFloat).unsqueeze(0).expand({batch, -1, -1, -1})
                                     : at::zeros({batch, s.n_head(), s.head_size, s.head_size}, o.dtype(at::kFloat));
    st.push_back({at::zeros({batch, s.n_embd}, o), wkv, at::zeros({batch, s.n_embd}, o)});
  }
  return st;
}

double long_context_forward_backward(RWKV& model, const at::Tensor& x, const at::Tensor& y,
                                     const LongContextOptions& o, const BatchCounts& batch) {
  TORCH_CHECK(o.chunk_len > 0 && x.size(1) % o.chunk_len == 0, "long context: chunk_ctx ", o.chunk_len,
              " does not divide the sample length ", x.size(1));
  return o.bptt == Bptt::full ? full_bptt(model, x, y, batch, o) : truncated_bptt(model, x, y, batch, o);
}

}  // namespace rwkv7
