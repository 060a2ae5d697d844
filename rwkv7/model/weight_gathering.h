// How the model asks for weights that are not all kept on every process (ZeRO stage 3,
// rwkv7/train/sharded_params.h): before a unit computes, its weights must be there; after, they
// may go. The model says when; whoever shards the weights decides what that costs.
//
// Units: kEmbedding (emb), the blocks 0 .. n_layer-1, then kHead(n_layer) (ln_out and head).
// `backward`: a checkpointed block recomputing itself inside the backward pass.
// after() is called only where no graph keeps the unit's weights (no grad, or a checkpointed
// block); weights that a graph saved are released when their gradient has been accumulated.
#pragma once
#include <cstdint>

namespace rwkv7 {

struct WeightGathering {
  static constexpr int64_t kEmbedding = -1;
  static int64_t head_unit(int64_t n_layer) { return n_layer; }
  virtual ~WeightGathering() = default;
  virtual void before(int64_t unit, bool backward) = 0;
  virtual void after(int64_t unit, bool backward) = 0;
};

}  // namespace rwkv7
