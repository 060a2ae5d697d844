// Long context (chunk_ctx): one batch's forward, loss and backward with every sample run as
// chunks of chunk_ctx tokens, each layer's WKV state and both token-shift states carried from
// chunk to chunk, so that activation memory is that of one chunk whatever ctx_len is.
//
// bptt: full gives the exact gradient of the whole sample. The forward runs every chunk without
// a graph and keeps only the states at each chunk's start; the backward then runs chunk n-1 down
// to chunk 0, each forward again from its saved start (as leaves that require grad) and back,
// with the gradients of the chunk's final states (what chunk c+1's backward left on its start
// states) fed in beside the loss's: dL/dS flows through rwkv7::wkv7_state_passing's sT.
//   memory: one chunk's activations + n * layers * (2 B C + B H N N) boundary values
//   compute: two forwards and one backward per chunk (like grad_cp)
// bptt: truncated detaches the states at each boundary and back-propagates each chunk as soon
// as it is computed (RWKV-PEFT's infctx and its peers): one forward, no gradient across chunks.
//
// The loss is the unchunked step's: each chunk's part is scaled by the whole batch's counts
// (rwkv7/train/loss_parts.h), so the parts add up to the batch's loss.
// Randomness (LoRA's dropout) is replayed: each chunk's recompute draws what its forward drew.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "rwkv7/model/model.h"
#include "rwkv7/train/config.h"
#include "rwkv7/train/loss_parts.h"

namespace rwkv7 {

struct LongContextOptions {
  int64_t chunk_len = 0;  // chunk_ctx: tokens per chunk, dividing T
  Bptt bptt = Bptt::full;
  LossOptions loss;       // each chunk's loss as the unchunked step makes it
};

// x, y: [B, T] inputs and targets (-100: ignored), all or part (a micro-batch) of a step's batch
// whose counts are `batch`. Adds the gradient to the parameters' .grad and returns the loss part.
double long_context_forward_backward(RWKV& model, const at::Tensor& x, const at::Tensor& y,
                                     const LongContextOptions& options, const BatchCounts& batch);

// The states every sample starts from: zeros, or the tuned time_state (in the graph when grad
// mode is on, so that state tuning trains it).
ModelState training_start_state(RWKV& model, int64_t batch);

}  // namespace rwkv7
