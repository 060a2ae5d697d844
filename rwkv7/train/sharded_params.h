// ZeRO stages 1-3 (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion
// Parameter Models", 2020) on the Communicator: every trained parameter has one owner rank (the
// largest first, each to the least-loaded rank), and only its owner keeps its fp32 master and
// Adam moments.
//
//   stage 1  After the backward pass, each gradient is summed onto its owner (reduce, bucket by
//            bucket) and dropped elsewhere; the owner steps; the new weight is broadcast from it.
//   stage 2  The same, but a gradient goes to its owner as soon as autograd has accumulated it
//            (a post-accumulate hook), and is dropped at once: no rank ever holds all gradients.
//   stage 3  Also the weights: a rank keeps only those it owns. The model asks for a unit (the
//            embedding, a block, the head) before it computes (WeightGathering); its weights are
//            broadcast from their owners (the next unit's are sent while this one computes) and
//            freed after: at once where no graph saved them (a checkpointed block, no grad), else
//            when their gradient has been accumulated.
//
// Bytes per parameter for fp32 training on W ranks (weight 4, gradient 4, Adam moments 8):
// stage 0: 16; stage 1: 8 + 8/W; stage 2: 4 + 12/W; stage 3: 16/W; plus the gathered units and
// the buckets in flight, which do not grow with the model. A bucket of gradients is summed in fp32
// and divided by W on its owner; each backward pass (micro-batch, long-context chunk) sends its own.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/model.h"
#include "rwkv7/model/weight_gathering.h"
#include "rwkv7/train/distributed.h"

namespace rwkv7 {

class ShardedParameters : public WeightGathering {
 public:
  // stage 1, 2 or 3. The model's weights must be the same on every rank (broadcast from rank 0).
  ShardedParameters(Communicator& comm, RWKV& model, int64_t stage, int64_t bucket_elements = int64_t(1) << 22);
  ~ShardedParameters() override;

  // Which parameters (named_parameters order) this rank owns: the ones its optimizer updates.
  const std::vector<bool>& owned() const { return owned_; }
  int64_t stage() const { return stage_; }

  // After the step's last backward pass: the mean gradient over ranks of each owned parameter is
  // the .grad of master(k) (the optimizer's fp32 copy); no other gradient is left.
  void finish_gradients(const std::function<at::Tensor&(size_t)>& master);
  // After the optimizer step, stages 1 and 2: every rank receives the owners' new weights.
  void broadcast_updated_weights();
  // Stage 3: the whole model, gathered one parameter at a time: on rank 0 (others get nothing).
  StateDict gathered_weights();
  // Stage 3: every weight this rank does not own is freed (between steps, after validation).
  void release_all();
  // Whether the weights this rank holds are all finite (stage 3: its own; else all of them).
  bool held_weights_finite() const;

  void before(int64_t unit, bool backward) override;
  void after(int64_t unit, bool backward) override;

 private:
  struct GradBucket {  // gradients of one owner, summed onto it when all have arrived
    int64_t owner = 0;
    std::vector<size_t> params;
    int64_t numel = 0, waiting = 0;
    std::vector<char> arrived;
    at::Tensor flat;  // fp32, while being filled
  };
  struct InFlight {
    size_t bucket;
    at::Tensor flat;
    Communicator::Pending wait;
  };
  struct Unit {  // stage 3
    std::vector<size_t> params;
    bool complete = false;  // every weight here, none freed since; the same on every rank
    std::vector<Communicator::Pending> pending;
  };

  void add_gradient(size_t k, const at::Tensor& grad);  // (holds mutex_)
  void launch(size_t bucket);
  void consume_oldest();
  void start_gather(int64_t unit);
  void finish_gather(int64_t unit);
  void wait_pending(int64_t unit);  // broadcasts under way, never freed under
  void release(int64_t unit);
  void materialize(size_t k);
  void free_weight(size_t k);
  Unit& unit(int64_t u) { return units_[static_cast<size_t>(u + 1)]; }

  Communicator& comm_;
  int64_t stage_, rank_, world_, n_layer_;
  std::vector<std::string> names_;
  std::vector<at::Tensor> params_;
  std::vector<int64_t> owner_, unit_of_, bucket_of_, offset_, slot_;
  std::vector<bool> owned_;
  std::vector<size_t> bytes_;       // each weight's storage when present
  std::vector<GradBucket> buckets_;
  std::deque<InFlight> in_flight_;
  std::vector<at::Tensor> owned_grad_;  // fp32 sums over ranks (and backward passes), owned only
  std::vector<char> had_grad_;
  std::vector<Unit> units_;             // kEmbedding, blocks, head
  std::recursive_mutex mutex_;          // hooks run on autograd's threads
};

}  // namespace rwkv7
