#include "rwkv7/train/train_state.h"

#include <ATen/ATen.h>

namespace rwkv7 {

std::string state_path_for(const std::string& checkpoint_path) {
  const std::string ext = ".pth";
  return checkpoint_path.substr(0, checkpoint_path.size() - ext.size()) + ".state.pth";
}

StateDict encode_position(const RunPosition& p) {
  auto i64 = [](int64_t v) { return at::tensor(v, at::kLong); };
  return {{"run.epoch_begin", i64(p.epoch_begin)},       {"run.warmup_steps", i64(p.warmup_steps)},
          {"run.epoch_in_run", i64(p.epoch_in_run)},     {"run.step_in_epoch", i64(p.step_in_epoch)},
          {"run.epoch_loss_sum", at::tensor(p.epoch_loss_sum, at::kDouble)},
          {"run.epoch_loss_count", i64(p.epoch_loss_count)}, {"run.epoch_steps", i64(p.epoch_steps)}};
}

RunPosition decode_position(const StateDict& d, const std::string& path) {
  auto i64 = [&](const char* n) { return find_tensor(d, n, path).item<int64_t>(); };
  RunPosition p;
  p.epoch_begin = i64("run.epoch_begin");
  p.warmup_steps = i64("run.warmup_steps");
  p.epoch_in_run = i64("run.epoch_in_run");
  p.step_in_epoch = i64("run.step_in_epoch");
  p.epoch_loss_sum = find_tensor(d, "run.epoch_loss_sum", path).item<double>();
  p.epoch_loss_count = i64("run.epoch_loss_count");
  p.epoch_steps = i64("run.epoch_steps");
  return p;
}

}  // namespace rwkv7
