// One training run, set up and ready to step: the owner of the training step. `rwkv7 train`
// drives it through the seed's loop (trainer.cpp); `rwkv7 bench` times the same step().
//
// Opening a run does, in order: the data-parallel environment (torchrun-style variables), the
// device, the run folder, the communicator, the data, the start point (fresh, load_model, or
// resume from proj_dir, exactly when the training state is there), the model, the optimizer.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/model.h"
#include "rwkv7/model/model_config.h"
#include "rwkv7/train/checkpointer.h"
#include "rwkv7/train/config.h"
#include "rwkv7/train/distributed.h"
#include "rwkv7/peft/fine_tune_origin.h"
#include "rwkv7/train/optim.h"
#include "rwkv7/train/run_dir.h"
#include "rwkv7/train/train_state.h"

namespace rwkv7 {

class BinIdx;
class ShardedParameters;

// The one way from a config to a model and where it computes.
ModelShape model_shape(const TrainConfig& cfg);  // the seed's shape, d_*_lora keys where set
at::Device training_device(const TrainConfig& cfg, int64_t local_rank);  // cuda:local_rank or cpu
at::ScalarType compute_dtype(const TrainConfig& cfg);                     // bf16 or fp32

// A new model by the seed's init rules, in fp32 on the CPU.
RWKV init_model(const TrainConfig& cfg, uint64_t seed);
// Writes proj_dir/rwkv-init.pth by the seed's init rules (bf16 for bf16 runs, else fp32).
std::string prepare_init(const TrainConfig& cfg);

struct Batch {
  at::Tensor x, y;  // [micro_bsz, ctx_len] token ids: inputs and next-token targets (-100: ignored)
};

struct StepResult {
  double loss = 0;        // mean over the global batch
  double grad_norm = 0;   // before clipping
  bool skipped = false;   // the loss or gradient was not finite: no update
  bool stop = false;      // some rank asked to stop (signal): all ranks stop together
  int stop_signal = 0;    // the signal that asked (whichever rank got it); 0: several kinds, or none
  double forward_ms = 0, backward_ms = 0, optimizer_ms = 0, step_ms = 0;
};

class Run {
 public:
  enum class Purpose {
    kTrain,  // everything: files in proj_dir, data, start point
    kBench,  // the config's model freshly initialised in memory; no data, no files (several
             // processes under torchrun, as training)
  };
  explicit Run(const TrainConfig& config, Purpose purpose = Purpose::kTrain);
  ~Run();
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // x, y of step `step_in_epoch` of mini-epoch `epoch`: this rank's samples by the seed's sampler.
  Batch batch(int64_t epoch, int64_t step_in_epoch) const;
  // One optimizer step at `lr`: forward, loss, backward, gradient mean over ranks, clip,
  // update. `stop_signal`: the signal that asked this process to stop, 0 for none (shared with the
  // other ranks). `timed`: wait for the device between phases, so the phase times are true (bench).
  StepResult step(const Batch& batch, double lr, int stop_signal = 0, bool timed = false);
  // Called in step() once the gradients are final, before clipping (tests read them here).
  std::function<void(RWKV&)> on_gradients;

  // Seeds the generator of the step's own randomness (LoRA's dropout) from random_seed, the
  // mini-epoch and the rank, so that a run repeats itself and a resume at a mini-epoch's start
  // draws what the uninterrupted run drew. A resume inside a mini-epoch instead restores the
  // generator as it was saved (one process, or one state file per rank), so it too is exact.
  // Without random_seed (-1) nothing is seeded.
  void seed_randomness(int64_t epoch);

  bool validates() const { return val_windows_.defined(); }
  double validate();  // mean cross-entropy over the held-out windows

  // What a checkpoint holds: the model's weights, or only the trained tensors when fine-tuning.
  StateDict saved_weights();  // (ZeRO-3: gathered, on rank 0 alone)
  // Weights as `checkpoint` (rank 0) and, with `with_state`, the training state beside it
  // (position `pos`, optimizer moments and masters; one shard per rank under ZeRO).
  // Refuses (throws) to write weights that are no longer finite.
  void save(const std::string& checkpoint, bool with_state);

  // Each rank's `value`, in rank order, on every rank (a collective: every rank calls it).
  std::vector<double> from_every_rank(double value);

  // What the run is: asked, never set from outside.
  const TrainConfig& config() const { return cfg_; }  // devices from WORLD_SIZE
  bool rank0() const { return rank0_; }
  at::Device device() const { return device_; }
  const RunDir& dir() const { return dir_; }
  const StartPoint& start() const { return start_; }
  RWKV& model() { return model_; }
  const RWKV& model() const { return model_; }
  const SeedOptimizer& optimizer() const { return *optimizer_; }

  // Where the loop is (saved in the training state, so that a resume goes on from it): the next
  // step of a mini-epoch and that mini-epoch's losses so far.
  const RunPosition& position() const { return pos_; }
  void next_step() { ++pos_.step_in_epoch; }
  void add_epoch_loss(double loss) {
    pos_.epoch_loss_sum += loss;
    ++pos_.epoch_loss_count;
  }
  void next_epoch() { pos_ = pos_.next_epoch(); }

 private:
  TrainConfig cfg_;
  DistEnv env_;
  bool rank0_ = true;
  at::Device device_{at::kCPU};
  RunDir dir_;
  StartPoint start_;
  RunPosition pos_;
  RWKV model_{nullptr};
  std::unique_ptr<SeedOptimizer> optimizer_;
  std::unique_ptr<Communicator> comm_;

  void open_data();
  StateDict choose_start();           // sets start and pos; returns the training state to load
  RunPosition checked_position(const StateDict& state) const;
  void build_model();
  void build_fine_tuned_model(const StateDict& training_state);
  void check_origin(const StateDict& training_state, const FineTuneOrigin& now) const;
  void check_lora_load(const FineTuneOrigin& now) const;
  void check_train_parts() const;
  Batch document_batch(int64_t epoch, int64_t step_in_epoch) const;  // dataload: pad
  void build_optimizer(const StateDict& training_state);
  void add_checkpointed_parts();
  StateSharding sharding() const;
  at::TensorOptions collective_options() const;
  void agreed(const std::function<void()>& what);  // all ranks succeed, or all throw

  std::unique_ptr<Checkpointer> checkpointer_;  // what is saved, where; what a resume reads
  std::unique_ptr<RunDirLock> lock_;  // rank 0 holds proj_dir while the run lives
  bool sharded_ = false;  // ZeRO, zero_stage >= 1 over several processes
  std::unique_ptr<ShardedParameters> zero_;
  bool fused_loss_ = false;  // the cross-entropy as one op (fused_ops: 1)
  std::string state_file_;  // the training state resumed from, if any
  FineTuneOrigin origin_;   // fine-tuning: what the run was started from (saved in its state)
  StateDict origin_state_;  // exact_resume 0: the state file read for its origin alone
  at::Tensor resume_rng_;   // the generator state saved inside a mini-epoch, restored at its resume
  std::unique_ptr<BinIdx> data_;
  mutable std::unique_ptr<at::Tensor> shuffled_;  // dataload pad, data_shuffle 1: this pass's document order
  mutable uint64_t shuffled_pass_ = 0;
  at::Tensor val_windows_;
  std::function<double(double)> global_sum_of_squares_;  // sharded clipping
};

}  // namespace rwkv7
