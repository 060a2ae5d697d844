// A training run, as the seed's trainer does it: open the run (trainer's Run: start point,
// model, optimizer), then mini-epochs of steps (schedule, batch, forward, loss, backward, clip,
// step, log) with saves at the seed's moments, until the token budget.
#pragma once
#include <cstdint>
#include <string>

#include "rwkv7/train/config.h"
#include "rwkv7/train/run.h"

namespace rwkv7 {

struct RunSummary {
  int64_t steps = 0;           // optimizer steps taken in this run
  int64_t last_epoch = -1;     // the last mini-epoch completed
  double last_loss = 0;
  std::string stop_reason;     // "token budget", "epoch_limit", ...
};

RunSummary train(const TrainConfig& cfg);

}  // namespace rwkv7
