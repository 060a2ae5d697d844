// Where a run stands, saved beside each checkpoint as rwkv-<n>.state.pth (a .pth dict), so that
// a resumed run continues exactly as if it had never stopped: the optimizer's moments and fp32
// master weights, the step position, the schedule's anchor and the mini-epoch's loss so far.
// (The seed saves weights only; without this file we resume as it does.)
#pragma once
#include <cstdint>
#include <string>

#include "rwkv7/io/checkpoint.h"

namespace rwkv7 {

struct RunPosition {
  int64_t epoch_begin = 0;       // the schedule's anchor: the first mini-epoch of the original run
  int64_t warmup_steps = -1;     // the warmup the original run used
  int64_t epoch_in_run = 0;      // next step's mini-epoch, counted from epoch_begin
  int64_t step_in_epoch = 0;     // next step within that mini-epoch
  double epoch_loss_sum = 0;     // the mini-epoch's losses so far (for its train_log line)
  int64_t epoch_loss_count = 0;
  int64_t epoch_steps = 0;       // for a consistency check on resume

  // The start of the next mini-epoch: the anchors kept, the count and the losses begun anew.
  RunPosition next_epoch() const {
    RunPosition p;
    p.epoch_begin = epoch_begin;
    p.warmup_steps = warmup_steps;
    p.epoch_in_run = epoch_in_run + 1;
    p.epoch_steps = epoch_steps;
    return p;
  }

  // "run.*" entries of a training state. load_state_dict throws CheckpointError naming `path` if
  // the dict does not hold a position.
  StateDict state_dict() const;
  void load_state_dict(const StateDict& d, const std::string& path);
};

// Is `p` a position a run can have saved with checkpoint rwkv-<n>.pth (`next_epoch` = n + 1):
// the mini-epoch complete (next_epoch reached, step 0), or interrupted inside mini-epoch n?
// Returns "" if so, else what is wrong.
std::string implausible_position(const RunPosition& p, int64_t next_epoch, int64_t epoch_steps);

// A fingerprint of a checkpoint's weights: FNV-1a over every tensor's name, shape, dtype and the
// bytes of its first and last 4096 elements. The state file records its checkpoint's, so that a
// resume never pairs a checkpoint with a state saved beside another one.
int64_t weights_digest(const StateDict& weights);

// The same over every element (a fine-tuning run's base, PiSSA start and lora_load, where a file
// that differs only in the middle of a tensor is another start): 64-bit words mixed FNV-style.
int64_t contents_digest(const StateDict& weights);

}  // namespace rwkv7
