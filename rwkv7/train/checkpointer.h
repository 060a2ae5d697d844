// The one owner of what a training run saves, where, and in which order (torchtitan's
// checkpointer): for each checkpoint rwkv-<n>.pth (the weights, or a fine-tuning run's trained
// tensors; rank 0) the training state rwkv-<n>.state.pth beside it (one per rank under ZeRO).
//
// The training state is the state_dicts of the run's stateful parts, each registered once with
// add_part (position, optimizer, fine-tuning origin, generator), plus two entries that pair it
// with its checkpoint: the precision it was trained in and a digest of the weights saved beside
// it. A resume reads it back with read_state, and paired() tells whether it belongs to the
// checkpoint being resumed. Further stateful parts (sharded parameters, long-context chunk
// states) are more add_part calls.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "rwkv7/io/checkpoint.h"
#include "rwkv7/train/run_dir.h"

namespace rwkv7 {

class Checkpointer {
 public:
  // `agreed(f)` runs f on every rank and throws on all if it throws on any (Run::agreed); the
  // three writes of a save are separated by it, so that no rank is ahead of another's files.
  using Agreement = std::function<void(const std::function<void()>&)>;
  Checkpointer(const RunDir& dir, StateSharding sharding, bool rank0, int64_t precision_bits, Agreement agreed);

  // A part of the run whose state a resume needs: its entries ("run.*", the optimizer's names).
  void add_part(std::function<StateDict()> state_dict);

  // Writes `weights` as `checkpoint` (rank 0) and, with `with_state`, this process's training
  // state beside it: first the old state file is removed, then the weights, then the new state,
  // so that a crash in between leaves weights without a state (a weights-only resume that says
  // so), never weights beside a stale state.
  // `digest`: weights_digest of the whole weights (ZeRO-3: rank 0 alone holds them, and shares it).
  void save(const std::string& checkpoint, const StateDict& weights, int64_t digest, bool with_state) const;

  // The training state beside `checkpoint`; empty with `why_not` said when there is none. One
  // saved by another number of processes or zero_stage comes whole, `saved_as` saying how.
  StateDict read_state(const std::string& checkpoint, std::string* why_not, std::string* saved_as) const;
  std::string state_file(const std::string& checkpoint) const { return RunDir::state_file(checkpoint, sharding_); }

  // "" when `state` was saved beside `weights` (the checkpoint `checkpoint`) by a run of this
  // precision; else why not. A state from before the pairing entries existed is trusted
  // (`*unpaired` set).
  std::string pairing_fault(const StateDict& state, const StateDict& weights, const std::string& checkpoint,
                            bool* unpaired) const;

 private:
  const RunDir& dir_;
  StateSharding sharding_;
  bool rank0_;
  int64_t precision_bits_;
  Agreement agreed_;
  std::vector<std::function<StateDict()>> parts_;
};

}  // namespace rwkv7
