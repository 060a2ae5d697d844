#include "rwkv7/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace rwkv7 {

ScheduleAt lr_schedule(const ScheduleParams& p, int64_t global_step) {
  const double real_step = static_cast<double>(global_step + p.epoch_begin * p.epoch_steps);
  const double w = static_cast<double>(p.warmup_steps);
  const double tokens_per_step = static_cast<double>(p.ctx_len) * static_cast<double>(p.real_bsz);
  // The seed's exact order of operations (Python floats), for bit-level agreement.
  const double real_tokens = real_step * tokens_per_step;
  const double warmup_tokens = w * tokens_per_step;
  double progress = (real_tokens - warmup_tokens) /
                    (std::fabs(static_cast<double>(p.my_exit_tokens)) - warmup_tokens);
  progress = std::max(0.0, std::min(1.0, progress));
  const double f = p.lr_final / p.lr_init;
  const double mult = (0.5 + f / 2) + (0.5 - f / 2) * std::cos(M_PI * progress);
  double lr = p.lr_init * mult;
  if (global_step < p.warmup_steps)
    lr = lr * (0.01 + 0.99 * static_cast<double>(global_step) / w);
  return {lr, progress, progress >= 1};
}

ScheduleAt cos_schedule(double lr_init, double lr_final, int64_t real_step, int64_t total_steps) {
  if (real_step >= total_steps) return {lr_final, 1.0, true};
  const double progress = static_cast<double>(real_step) / static_cast<double>(total_steps);
  return {lr_final + 0.5 * (lr_init - lr_final) * (1 + std::cos(M_PI * progress)), progress, false};
}

}  // namespace rwkv7
