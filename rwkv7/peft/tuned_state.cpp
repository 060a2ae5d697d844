#include "rwkv7/peft/tuned_state.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <vector>

#include "rwkv7/io/safetensors.h"
#include "rwkv7/io/value_checks.h"
#include "rwkv7/peft/peft_names.h"

namespace rwkv7 {

namespace {

const std::string kHead = "blocks.", kTail = ".att.time_state";

// "blocks.<i>.att.time_state" -> i; -1 for a name of another form
int64_t time_state_layer(const std::string& name) {
  if (name.size() <= kHead.size() + kTail.size() || name.compare(0, kHead.size(), kHead) != 0 ||
      name.compare(name.size() - kTail.size(), kTail.size(), kTail) != 0)
    return -1;
  const std::string digits = name.substr(kHead.size(), name.size() - kHead.size() - kTail.size());
  if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

}  // namespace

ModelState tuned_state(const RWKV& model, const StateDict& file, const std::string& path, int64_t batch) {
  const ModelShape& s = model->shape;
  const std::vector<int64_t> want = {s.n_head(), s.head_size, s.head_size};
  ModelState state = zero_state(model, batch);
  std::vector<bool> seen(size_t(s.n_layer), false);
  bool any = false;
  for (const auto& [name, t] : file) {
    if (!peft_names::ends_with(name, "time_state")) continue;  // a merged file also holds the model's weights
    const int64_t layer = time_state_layer(name);
    if (layer < 0)
      throw CheckpointError(fmt::format("{}: {} is not named blocks.<layer>.att.time_state", path, name));
    if (layer >= s.n_layer)
      throw CheckpointError(fmt::format("{}: {} is for layer {}, this model has {} layers (a state tuned for another "
                                        "model?)", path, name, layer, s.n_layer));
    check_float_weights({{name, t}}, path);
    check_finite({{name, t}}, path);
    if (t.sizes() != at::IntArrayRef(want))
      throw CheckpointError(fmt::format("{}: {} is {}, this model needs {} (a state tuned for another model?)", path,
                                        name, c10::str(t.sizes()), c10::str(at::IntArrayRef(want))));
    // every sequence of the batch starts from the same S (a copy each: the state is carried on)
    at::Tensor& wkv = state[size_t(layer)].wkv;
    wkv = t.to(wkv.device(), at::kFloat).unsqueeze(0).expand(wkv.sizes()).clone(at::MemoryFormat::Contiguous);
    seen[size_t(layer)] = true;
    any = true;
  }
  if (!any)
    throw CheckpointError(path + ": no blocks.<layer>.att.time_state tensors (not a tuned state: RWKV-PEFT's "
                                 "rwkv-<n>.pth of a train_type state run, or a model merged with one)");
  for (int64_t l = 0; l < s.n_layer; ++l)
    if (!seen[size_t(l)])
      throw CheckpointError(fmt::format("{}: no blocks.{}.att.time_state (this model has {} layers and a tuned state "
                                        "has one per layer; a state tuned for another model?)", path, l, s.n_layer));
  return state;
}

ModelState initial_state(const RWKV& model, const std::string& state_path, int64_t batch) {
  if (state_path.empty()) return zero_state(model, batch);
  return tuned_state(model, read_weights(state_path), state_path, batch);
}

}  // namespace rwkv7
