// The RWKV-7 language model: emb -> blocks -> ln_out -> head. Parameter names, shapes and
// order are exactly the seed's state_dict().
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <string>
#include <vector>

#include "rwkv7/model/block.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/model_config.h"
#include "rwkv7/model/state.h"
#include "rwkv7/model/weight_gathering.h"

namespace rwkv7 {

class RWKVImpl : public torch::nn::Module {
 public:
  // options: where and in which dtype the parameters live (the meta device lays out a
  // model without memory).
  explicit RWKVImpl(const ModelShape& shape, const at::TensorOptions& options = {});

  // idx: [B, T] token ids (int64) -> logits [B, T, V]. With gradient checkpointing each
  // block's activations are recomputed in the backward pass instead of being kept.
  at::Tensor forward(const at::Tensor& idx);
  // Everything before the head: ln_out of the last block's output, [B, T, C] (head_chunk's input).
  at::Tensor hidden(const at::Tensor& idx);
  // The same continuing from `state` (one LayerState per layer, updated to the state after idx):
  // one chunk of a long sample (rwkv7/train/long_context.h). In training mode the WKV state goes
  // through rwkv7::wkv7_state_passing, differentiable in the states, and blocks are not
  // checkpointed (the chunk is the unit that is recomputed); in eval mode, RNN-mode inference.
  at::Tensor hidden(const at::Tensor& idx, ModelState& state);

  // Name -> parameter, in the seed's order.
  StateDict state_dict() const;
  // Copies the dict into the parameters (converting dtypes). Throws CheckpointError listing
  // every missing, unexpected or mis-shaped name. Layer 0's v0/v1/v2 may be absent.
  void load_state_dict(const StateDict& dict, const std::string& path = "");

  ModelShape shape;
  bool gradient_checkpointing = false;
  // doc_reset: 1: token 0 separates packed documents; every layer's token shift and WKV state
  // restart at each token 0 of idx (from the tuned state where one exists), so each document
  // runs as its own sequence with its 0 in front (RWKV-LM #298).
  bool doc_reset = false;
  // fused_ops: 1: every block's time and channel mix through the fused ops (training only; a
  // state, as in inference, always takes the composite path).
  void use_fused_ops(bool on);
  // ZeRO-3: asked for each unit's weights before it computes (not owned; null: all are here).
  WeightGathering* gathering = nullptr;
  Embedding emb{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  std::vector<Block> block_list;  // the same blocks, typed
  LayerNorm ln_out{nullptr};
  Linear head{nullptr};

 private:
  at::Tensor embed(const at::Tensor& idx);
  std::pair<at::Tensor, at::Tensor> run_block(Block& block, const at::Tensor& x, const at::Tensor& v_first,
                                              LayerState* state, const at::Tensor& resets, bool checkpointed);
  at::Tensor finish(const at::Tensor& x);  // ln_out
};
TORCH_MODULE(RWKV);

}  // namespace rwkv7
