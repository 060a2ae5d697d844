// doc_reset: 1 (packed documents, RWKV-LM #298): a sample holding several documents, each
// starting at a token 0, must give exactly what each document gives run alone as its own
// sequence (its 0 in front): the same logits and, summed over the documents, the same gradients;
// with state tuning each document starts from the tuned state. In float64, so that the only
// differences are the order of sums (bound 1e-10); a restart that leaks one token of state
// moves logits by O(1).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "golden.h"
#include "rwkv7/model/model.h"
#include "rwkv7/train/long_context.h"

namespace rwkv7 {
namespace {

using testing::relative_error;

// Two layers of 4 heads of 16 channels in float64, every weight random (the seed's init leaves
// the blocks' outputs at 0, where any state would agree).
RWKV small_model(bool tuned_state) {
  RWKV model(seed_shape(2, 64, 256, 16), at::TensorOptions().dtype(at::kDouble));
  if (tuned_state)
    for (auto& block : model->block_list) block->att->add_time_state();
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(17);
  for (auto& p : model->parameters()) p.copy_(at::randn(p.sizes(), gen, at::kDouble) * 0.3);
  return model;
}

// Tokens 1..255 with documents starting (token 0) at the first step, mid-sample, twice in a row
// and at the last step; the second sample holds one restart.
at::Tensor packed_tokens(int64_t T) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(23);
  at::Tensor idx = at::randint(1, 256, {2, T}, gen, at::kLong);
  for (int64_t t : {int64_t(0), int64_t(7), int64_t(8), int64_t(20), T - 1}) idx[0][t] = 0;
  idx[1][25] = 0;
  return idx;
}

struct Pass {
  at::Tensor logits;
  std::vector<at::Tensor> grads;
};

Pass collect(RWKV& model, const at::Tensor& logits, const at::Tensor& weights) {
  (logits * weights).sum().backward();
  Pass p{logits.detach(), {}};
  for (auto& param : model->parameters()) {
    p.grads.push_back(param.grad().defined() ? param.grad().clone() : at::zeros_like(param));
    param.mutable_grad() = at::Tensor();
  }
  return p;
}

// Each document of each sample alone through the model without restarts, logits joined.
Pass documents_alone(RWKV& model, const at::Tensor& idx, const at::Tensor& weights) {
  model->doc_reset = false;
  std::vector<at::Tensor> rows;
  for (int64_t b = 0; b < idx.size(0); ++b) {
    std::vector<at::Tensor> pieces;
    int64_t t0 = 0;
    for (int64_t t = 1; t <= idx.size(1); ++t)
      if (t == idx.size(1) || idx[b][t].item<int64_t>() == 0) {
        pieces.push_back(model->forward(idx.slice(0, b, b + 1).slice(1, t0, t)));
        t0 = t;
      }
    rows.push_back(at::cat(pieces, 1));
  }
  return collect(model, at::cat(rows, 0), weights);
}

double worst(const Pass& got, const Pass& want, std::string* where) {
  double w = relative_error(got.logits, want.logits);
  *where = "logits";
  for (size_t i = 0; i < got.grads.size(); ++i) {
    const double e = relative_error(got.grads[i], want.grads[i]);
    if (e > w) w = e, *where = "gradient " + std::to_string(i);
  }
  return w;
}

TEST(DocReset, EachDocumentIsItsOwnSequence) {
  const at::Tensor idx = packed_tokens(40);
  for (const bool tuned : {false, true}) {
    RWKV model = small_model(tuned);
    const at::Tensor weights = at::randn({2, 40, 256}, at::kDouble);
    const Pass want = documents_alone(model, idx, weights);
    for (const bool checkpointed : {false, true}) {
      model->doc_reset = true;
      model->gradient_checkpointing = checkpointed;
      const Pass got = collect(model, model->forward(idx), weights);
      model->gradient_checkpointing = false;
      std::string where;
      const double e = worst(got, want, &where);
      std::printf("  packed vs alone (%s, grad_cp %d): %.2e (%s)\n", tuned ? "tuned state" : "from 0", checkpointed, e,
                  where.c_str());
      EXPECT_LE(e, 1e-10) << where;
    }
    model->doc_reset = false;  // and the restarts matter here: without them the logits differ
    EXPECT_GT(relative_error(model->forward(idx).detach(), want.logits), 1e-2);
  }
}

// In chunks with the states carried (long context, training: wkv7_reset per chunk) and in RNN
// mode (eval: the per-step scan with restarts), the restarts land where the whole sample has them.
// The training chunks carry float64 states here (1e-10); RNN mode's scan keeps its state in
// float32 by design (rwkv7/model/wkv7.h), so it meets the whole float64 sample to float32
// rounding (1e-5, the bound of LongContext.ChunkedForwardIsRnnInference).
TEST(DocReset, ChunksAndRnnModeRestartAlike) {
  const at::Tensor idx = packed_tokens(48);
  RWKV model = small_model(true);
  model->doc_reset = true;
  at::NoGradGuard no_grad;
  const at::Tensor whole = model->hidden(idx);
  for (const bool training : {true, false}) {
    ModelState state = training_start_state(model, 2);
    if (training) {
      for (size_t l = 0; l < state.size(); ++l)
        state[l].wkv = model->block_list[l]->att->time_state.unsqueeze(0).expand({2, -1, -1, -1}).clone();
    } else {
      model->eval();
    }
    std::vector<at::Tensor> parts;
    for (int64_t t0 = 0; t0 < 48; t0 += 16) parts.push_back(model->hidden(idx.slice(1, t0, t0 + 16), state));
    const double e = relative_error(at::cat(parts, 1), whole);
    std::printf("  chunks of 16 (%s) vs the whole sample: %.2e\n", training ? "training" : "RNN mode", e);
    EXPECT_LE(e, training ? 1e-10 : 1e-5);
  }
}

}  // namespace
}  // namespace rwkv7
