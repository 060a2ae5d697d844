#include "rwkv7/train/train_state.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>

namespace rwkv7 {

StateDict RunPosition::state_dict() const {
  const RunPosition& p = *this;
  auto i64 = [](int64_t v) { return at::tensor(v, at::kLong); };
  return {{"run.epoch_begin", i64(p.epoch_begin)},       {"run.warmup_steps", i64(p.warmup_steps)},
          {"run.epoch_in_run", i64(p.epoch_in_run)},     {"run.step_in_epoch", i64(p.step_in_epoch)},
          {"run.epoch_loss_sum", at::tensor(p.epoch_loss_sum, at::kDouble)},
          {"run.epoch_loss_count", i64(p.epoch_loss_count)}, {"run.epoch_steps", i64(p.epoch_steps)}};
}

void RunPosition::load_state_dict(const StateDict& d, const std::string& path) {
  auto i64 = [&](const char* n) { return find_tensor(d, n, path).item<int64_t>(); };
  RunPosition p;
  p.epoch_begin = i64("run.epoch_begin");
  p.warmup_steps = i64("run.warmup_steps");
  p.epoch_in_run = i64("run.epoch_in_run");
  p.step_in_epoch = i64("run.step_in_epoch");
  p.epoch_loss_sum = find_tensor(d, "run.epoch_loss_sum", path).item<double>();
  p.epoch_loss_count = i64("run.epoch_loss_count");
  p.epoch_steps = i64("run.epoch_steps");
  *this = p;  // all or nothing: a missing entry throws before any is set
}

std::string implausible_position(const RunPosition& p, int64_t next_epoch, int64_t epoch_steps) {
  if (p.epoch_begin < 0 || p.epoch_in_run < 0 || p.step_in_epoch < 0 || p.epoch_loss_count < 0 ||
      p.epoch_loss_count > p.step_in_epoch || p.step_in_epoch > epoch_steps)
    return "its position (epoch_begin " + std::to_string(p.epoch_begin) + ", epoch " + std::to_string(p.epoch_in_run) +
           ", step " + std::to_string(p.step_in_epoch) + ") is impossible";
  const int64_t epoch = p.epoch_begin + p.epoch_in_run;
  const bool complete = epoch == next_epoch && p.step_in_epoch == 0;
  const bool interrupted = epoch == next_epoch - 1 && p.step_in_epoch > 0;
  if (complete || interrupted) return "";
  return "it is at mini-epoch " + std::to_string(epoch) + " step " + std::to_string(p.step_in_epoch) +
         ", which is not where its checkpoint (after mini-epoch " + std::to_string(next_epoch - 1) + ") stands";
}

int64_t weights_digest(const StateDict& weights) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* data, size_t n) {
    const auto* b = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (const auto& [name, t] : weights) {
    mix(name.data(), name.size());
    for (int64_t d : t.sizes()) mix(&d, sizeof d);
    const int8_t dtype = static_cast<int8_t>(t.scalar_type());
    mix(&dtype, 1);
    const at::Tensor flat = t.detach().reshape({-1});
    const int64_t n = flat.numel(), k = std::min<int64_t>(n, 4096);
    for (const at::Tensor& part : {flat.slice(0, 0, k), flat.slice(0, n - k, n)}) {
      const at::Tensor c = part.cpu().contiguous();
      mix(c.data_ptr(), c.nbytes());
    }
  }
  return static_cast<int64_t>(h);
}

int64_t contents_digest(const StateDict& weights) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t word) { h = (h ^ word) * 1099511628211ull; };
  for (const auto& [name, t] : weights) {
    for (unsigned char c : name) mix(c);
    for (int64_t d : t.sizes()) mix(static_cast<uint64_t>(d));
    mix(static_cast<uint64_t>(t.scalar_type()));
    const at::Tensor c = t.detach().cpu().contiguous();
    const auto* bytes = static_cast<const unsigned char*>(c.data_ptr());
    const size_t n = c.nbytes();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t word;
      std::memcpy(&word, bytes + i, 8);
      mix(word);
    }
    for (; i < n; ++i) mix(bytes[i]);
  }
  return static_cast<int64_t>(h);
}

}  // namespace rwkv7
