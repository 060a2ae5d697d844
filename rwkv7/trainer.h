// A training run, as the seed's trainer does it: pick the starting weights (fresh, a given
// checkpoint, or resume from proj_dir), then mini-epochs of steps (schedule, batch, forward,
// loss, backward, clip, step, log) with saves at the seed's moments, until the token budget.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rwkv7/checkpoint.h"
#include "rwkv7/config.h"

namespace rwkv7 {

// Where a run starts.
struct StartPoint {
  std::string load_path;     // checkpoint to load; "" = fresh init
  int64_t epoch_begin = 0;   // first mini-epoch of this run
  int64_t warmup_steps = -1; // the run's warmup (10 when resuming from rwkv-<n>.pth)
  std::string note;          // what was chosen and why (printed and logged)
  StateDict weights;         // the checkpoint, when finding it meant reading it already
};

// The seed's resume rule for train_stage >= 2: the highest rwkv-<n>.pth in proj_dir (rwkv-init.pth
// counts as -1); if that one cannot be read, the one before it. Throws if there is none.
StartPoint find_resume_point(const TrainConfig& cfg);

struct RunSummary {
  int64_t steps = 0;           // optimizer steps taken in this run
  int64_t last_epoch = -1;     // the last mini-epoch completed
  double last_loss = 0;
  std::string stop_reason;     // "token budget", "epoch_limit", ...
};

// Writes proj_dir/rwkv-init.pth by the seed's init rules (bf16 for bf16 runs, else fp32).
std::string prepare_init(const TrainConfig& cfg);

RunSummary train(const TrainConfig& cfg);

}  // namespace rwkv7
