// The seed's learning-rate schedule (trainer.py on_train_batch_start), a pure function.
//
//   real_step = global_step + epoch_begin * epoch_steps
//   progress  = clamp((real_step - warmup) * ctx_len * real_bsz /
//                     (exit_tokens - warmup * ctx_len * real_bsz), 0, 1)
//   f  = lr_final / lr_init
//   lr = lr_init * ((0.5 + f/2) + (0.5 - f/2) * cos(pi * progress))
//   if global_step < warmup: lr *= 0.01 + 0.99 * global_step / warmup
// At progress >= 1 the run saves rwkv-final.pth and stops before the step.
#pragma once
#include <cstdint>

namespace rwkv7 {

struct ScheduleParams {
  double lr_init, lr_final;
  int64_t warmup_steps;  // may be -1 (the seed's default: no warmup)
  int64_t ctx_len, real_bsz, epoch_steps, epoch_begin, my_exit_tokens;
};

struct ScheduleAt {
  double lr;
  double progress;  // in [0, 1]
  bool finished;    // the token budget is reached: save and stop before this step
};

ScheduleAt lr_schedule(const ScheduleParams& p, int64_t global_step);

// RWKV-PEFT's lr_schedule cos (rwkvt/trick/lrs.py cos_decay), no warmup, over a run counted in
// mini-epochs: total = epoch_steps * epoch_count, real_step = global_step + epoch_begin * epoch_steps,
//   lr = lr_final + (lr_init - lr_final) (1 + cos(pi real_step / total)) / 2   (lr_final from total on)
// and the run is finished at real_step >= total.
ScheduleAt cos_schedule(double lr_init, double lr_final, int64_t real_step, int64_t total_steps);

}  // namespace rwkv7
