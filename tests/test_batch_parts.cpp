// A step's batch in parts (rwkv7/train/loss_parts.h): gradient accumulation's micro-batches and
// long context's chunks (chunk_ctx, rwkv7/train/long_context.h: a sample run as chunks with the
// states carried between them). Accumulation and bptt: full must be the one-piece step itself
// (its loss, gradient and update, to float32 rounding); bptt: truncated must be the step that
// detaches the states at every boundary; the chunked forward must be RNN-mode inference.
//
// The bounds (1e-5) are the issue's: float32 sums taken in another order (per chunk, then added)
// differ by a few ulp of the largest terms; a missing state gradient moves the gradients by
// O(1) relative (the truncated step shows how far: see TruncatedIsTheHandDetachedStep).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "golden.h"
#include "rwkv7/model/inference.h"
#include "rwkv7/train/config.h"
#include "rwkv7/train/long_context.h"
#include "rwkv7/train/loss.h"
#include "rwkv7/train/run.h"

namespace rwkv7 {
namespace {

using testing::relative_error;

// A small model with 4 heads of 32 channels, fresh from the seed's init (bench purpose: no files).
TrainConfig long_config(const std::vector<std::string>& overrides, int64_t ctx_len = 512) {
  const std::string yaml = "proj_dir: " + testing::scratch_dir("long_context") +
                           "\nvocab_size: 256\nctx_len: " + std::to_string(ctx_len) +
                           "\nn_layer: 2\nn_embd: 128\nhead_size: 32\nmicro_bsz: 2\n"
                           "lr_init: 1e-3\nlr_final: 1e-3\nadam_eps: 1e-8\nweight_decay: 0.01\ndevice: cpu\n"
                           "random_seed: 1\nmy_exit_tokens: 1000000\nmagic_prime: 0\n";
  return parse_train_config(yaml, "test", overrides);
}

// Random token batches (and, with `ignored`, some -100 targets as dataload: pad makes them).
Batch batch_of(int64_t step, int64_t B, int64_t T, bool ignored = false) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + step);
  const at::Tensor tokens = at::randint(0, 256, {B, T + 1}, gen, at::kLong);
  at::Tensor y = tokens.slice(1, 1, T + 1).clone();
  if (ignored) y.slice(1, T - T / 3, T).fill_(-100);  // the last third of every sample
  return {tokens.slice(1, 0, T), y};
}

struct Trace {
  std::vector<double> losses;
  StateDict step0_grads;  // before clipping
  StateDict final_weights;
};

// The seed's init leaves the blocks' outputs at zero (att.output, ffn.value): a chunked forward
// would agree with anything. Every weight moved by noise (the same for every run) makes each
// layer and each state count. (fp32: the optimizer's master weights are the parameters.)
// (`one_ulp`: then every weight moved up by one ulp, for the envelope below)
void perturb(RWKV& model, bool one_ulp = false) {
  at::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  for (auto& p : model->parameters()) {
    p.add_(at::randn(p.sizes(), gen, p.scalar_type()) * 0.1);
    if (one_ulp) p.copy_(at::nextafter(p, at::full_like(p, 1e9)));
  }
}

Trace train(const TrainConfig& cfg, int64_t steps, bool ignored = false, bool one_ulp = false) {
  rwkv7::Run run(cfg, rwkv7::Run::Purpose::kBench);
  perturb(run.model(), one_ulp);
  Trace t;
  run.on_gradients = [&](RWKV& model) {
    if (!t.step0_grads.empty()) return;
    for (const auto& p : model->named_parameters()) {
      if (!p.value().requires_grad()) continue;
      const at::Tensor& g = p.value().grad();
      t.step0_grads.emplace_back(p.key(), g.defined() ? g.clone() : at::zeros_like(p.value()));
    }
  };
  for (int64_t s = 0; s < steps; ++s)
    t.losses.push_back(run.step(batch_of(s, cfg.samples_per_step(), cfg.ctx_len, ignored), cfg.lr_init).loss);
  for (const auto& [name, w] : run.model()->state_dict()) t.final_weights.emplace_back(name, w.detach().clone());
  return t;
}

// The worst relative error over the tensors of two dicts of the same names.
double worst(const StateDict& a, const StateDict& b, std::string* where) {
  EXPECT_EQ(a.size(), b.size());
  double w = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    const double e = relative_error(a[i].second, b[i].second);
    if (e >= w) w = e, *where = a[i].first;
  }
  return w;
}

// Losses and step-0 gradients to `bound`. The weights after the steps to `bound` or, where Adam
// has amplified float32 rounding beyond it, to 3x `envelope`: how far the same unchunked run
// drifts when its initial weights move by one ulp (Adam turns a gradient that is rounding
// noise into an update of about lr either way; docs/testing.md). A lost state gradient is
// far outside both: it moves the step-0 gradients by O(1) (TruncatedIsTheHandDetachedStep).
void expect_same_training(const Trace& got, const Trace& want, const char* what, double bound = 1e-5,
                          double envelope = 0) {
  ASSERT_EQ(got.losses.size(), want.losses.size());
  double worst_loss = 0;
  for (size_t s = 0; s < got.losses.size(); ++s) {
    EXPECT_NEAR(got.losses[s], want.losses[s], bound) << what << " step " << s;
    worst_loss = std::max(worst_loss, std::fabs(got.losses[s] - want.losses[s]));
  }
  std::string wg, ww;
  const double eg = worst(got.step0_grads, want.step0_grads, &wg), ew = worst(got.final_weights, want.final_weights, &ww);
  std::printf("  %s: losses within %.2e, step-0 gradients %.2e (%s), final weights %.2e (%s; one-ulp envelope %.2e)\n",
              what, worst_loss, eg, wg.c_str(), ew, ww.c_str(), envelope);
  EXPECT_LE(eg, bound) << what << ": " << wg;
  EXPECT_LE(ew, std::max(bound, 3 * envelope)) << what << ": " << ww;
}

// How far the final weights of `cfg`'s run drift when the initial weights move by one ulp.
double one_ulp_envelope(const TrainConfig& cfg, int64_t steps, const Trace& run, bool ignored = false) {
  std::string where;
  return worst(train(cfg, steps, ignored, /*one_ulp=*/true).final_weights, run.final_weights, &where);
}

TEST(LongContext, FullBpttIsTheUnchunkedStep) {
  const Trace whole = train(long_config({}), 4);
  const double envelope = one_ulp_envelope(long_config({}), 4, whole);
  expect_same_training(train(long_config({"chunk_ctx=64"}), 4), whole, "ctx 512, chunk_ctx 64, bptt full", 1e-5, envelope);
  expect_same_training(train(long_config({"chunk_ctx=64", "head_chunk=100"}), 4), whole, "with head_chunk 100", 1e-5,
                       envelope);
  const Trace fused = train(long_config({"fused_ops=1"}), 4);
  expect_same_training(train(long_config({"chunk_ctx=64", "fused_ops=1"}), 4), fused, "with fused_ops 1", 1e-5,
                       one_ulp_envelope(long_config({"fused_ops=1"}), 4, fused));
}

// Packed documents restarting at their token 0 (doc_reset: 1; the random batches hold about two
// 0s per 512 tokens): the chunks carry the restarted states and the restart state's gradient
// (state tuning) from every restart, wherever the chunk boundaries fall.
TEST(LongContext, FullBpttWithDocReset) {
  const Trace whole = train(long_config({"doc_reset=1"}), 3);
  expect_same_training(train(long_config({"doc_reset=1", "chunk_ctx=64"}), 3), whole, "doc_reset, chunk_ctx 64", 1e-5,
                       one_ulp_envelope(long_config({"doc_reset=1"}), 3, whole));
  const TrainConfig state = long_config({"doc_reset=1", "train_type=state", "lr_init=1", "lr_final=1"});
  const Trace state_whole = train(state, 3);
  expect_same_training(
      train(long_config({"doc_reset=1", "train_type=state", "lr_init=1", "lr_final=1", "chunk_ctx=128"}), 3),
      state_whole, "doc_reset, state tuning, chunk_ctx 128", 1e-5, one_ulp_envelope(state, 3, state_whole));
  EXPECT_GT(std::fabs(train(long_config({}), 1).losses[0] - whole.losses[0]), 1e-4);  // the restarts matter
}

// Ignored targets (dataload: pad's -100) weigh each chunk by its own targets, as the unchunked
// mean over the batch's targets does; a chunk with none (the last third here) still adds
// L2Wrap's pull and passes the state gradient on.
TEST(LongContext, FullBpttWithIgnoredTargets) {
  const Trace whole = train(long_config({}), 3, true);
  expect_same_training(train(long_config({"chunk_ctx=64"}), 3, true), whole,
                       "ctx 512, chunk_ctx 64, a third of the targets ignored", 1e-5,
                       one_ulp_envelope(long_config({}), 3, whole, true));
}

// State tuning trains time_state, the state chunk 0 starts from: its gradient reaches it through
// every chunk. LoRA's dropout is replayed in each chunk's recompute.
TEST(LongContext, FullBpttFineTuning) {
  const TrainConfig state = long_config({"train_type=state", "lr_init=1", "lr_final=1"});
  const Trace state_whole = train(state, 3);
  expect_same_training(train(long_config({"train_type=state", "lr_init=1", "lr_final=1", "chunk_ctx=128"}), 3),
                       state_whole, "state tuning", 1e-5, one_ulp_envelope(state, 3, state_whole));
  const TrainConfig lora = long_config({"peft=lora", "lora_dropout=0"});
  const Trace lora_whole = train(lora, 3);
  expect_same_training(train(long_config({"peft=lora", "lora_dropout=0", "chunk_ctx=128"}), 3), lora_whole, "LoRA",
                       1e-5, one_ulp_envelope(lora, 3, lora_whole));
}

// With dropout the masks are drawn chunk by chunk, so the reference is the chunked forward kept
// whole in one graph (drawing the same masks in the same order) and back-propagated once. The
// step's recompute must draw again exactly what its forward drew, or the gradients part.
TEST(LongContext, FullBpttReplaysLoraDropout) {
  const TrainConfig cfg = long_config({"peft=lora", "lora_dropout=0.2", "chunk_ctx=128"});
  const Batch b = batch_of(0, 2, 512);
  rwkv7::Run stepped(cfg, rwkv7::Run::Purpose::kBench), whole(cfg, rwkv7::Run::Purpose::kBench);
  perturb(stepped.model());
  perturb(whole.model());
  StateDict grads;
  stepped.on_gradients = [&](RWKV& model) {
    for (const auto& p : model->named_parameters())
      if (p.value().requires_grad()) grads.emplace_back(p.key(), p.value().grad().clone());
  };
  at::manual_seed(31);
  stepped.step(b, cfg.lr_init);

  at::manual_seed(31);
  RWKV& model = whole.model();
  ModelState state = training_start_state(model, 2);
  at::Tensor loss = at::zeros({});
  for (int64_t t0 = 0; t0 < 512; t0 += 128)
    loss = loss + cross_entropy_l2wrap_part(model->head(model->hidden(b.x.slice(1, t0, t0 + 128), state)),
                                            b.y.slice(1, t0, t0 + 128), 2 * 512, 2 * 512);
  loss.backward();
  StateDict want;
  for (const auto& p : model->named_parameters())
    if (p.value().requires_grad()) want.emplace_back(p.key(), p.value().grad().clone());
  std::string where;
  const double e = worst(grads, want, &where);
  std::printf("  LoRA dropout 0.2, chunked step vs one graph: step-0 gradients %.2e (%s)\n", e, where.c_str());
  EXPECT_LE(e, 1e-5) << where;
}

// State tuning with truncated bptt: after chunk 0 nothing trained is upstream of a chunk (its
// start is detached and the weights are frozen); those chunks count in the loss only.
TEST(LongContext, TruncatedStateTuning) {
  const Trace t = train(long_config({"train_type=state", "lr_init=1", "lr_final=1", "chunk_ctx=128", "bptt=truncated"}), 2);
  ASSERT_EQ(t.losses.size(), 2u);
  EXPECT_TRUE(std::isfinite(t.losses[1]));
  double norm = 0;
  for (const auto& [name, g] : t.step0_grads) norm += g.norm().item<double>();
  EXPECT_GT(norm, 0);  // chunk 0 trains time_state
}

// The step that detaches by hand: each chunk from the last one's states as plain values, its
// part of the loss back-propagated at once.
StateDict hand_detached_gradients(RWKV& model, const Batch& batch, int64_t L) {
  const int64_t B = batch.x.size(0), T = batch.x.size(1);
  ModelState state = training_start_state(model, B);
  for (int64_t t0 = 0; t0 < T; t0 += L) {
    const at::Tensor h = model->hidden(batch.x.slice(1, t0, t0 + L), state);
    cross_entropy_l2wrap_part(model->head(h), batch.y.slice(1, t0, t0 + L), B * T, B * T).backward();
    for (LayerState& l : state) {
      l.att_x_prev = l.att_x_prev.detach();
      l.wkv = l.wkv.detach();
      l.ffn_x_prev = l.ffn_x_prev.detach();
    }
  }
  StateDict g;
  for (const auto& p : model->named_parameters())
    g.emplace_back(p.key(), p.value().grad().defined() ? p.value().grad().clone() : at::zeros_like(p.value()));
  return g;
}

TEST(LongContext, TruncatedIsTheHandDetachedStep) {
  const Trace whole = train(long_config({}), 3), truncated = train(long_config({"chunk_ctx=64", "bptt=truncated"}), 3);
  // the same weights at step 0 give the same loss; the gradients differ, and so does what follows
  EXPECT_NEAR(truncated.losses[0], whole.losses[0], 1e-5);
  std::string where;
  const double gap = worst(truncated.step0_grads, whole.step0_grads, &where);
  std::printf("  truncated vs full: step-0 gradients differ by %.2e (%s); step 2 loss %.6f vs %.6f\n", gap, where.c_str(),
              truncated.losses[2], whole.losses[2]);
  EXPECT_GT(gap, 1e-2);
  EXPECT_GT(std::fabs(truncated.losses[2] - whole.losses[2]), 1e-5);

  rwkv7::Run run(long_config({}), rwkv7::Run::Purpose::kBench);  // the same model
  perturb(run.model());
  const StateDict by_hand = hand_detached_gradients(run.model(), batch_of(0, 2, 512), 64);
  const double e = worst(truncated.step0_grads, by_hand, &where);
  std::printf("  truncated vs detached by hand: %.2e (%s)\n", e, where.c_str());
  EXPECT_LE(e, 1e-5) << where;
}

// The chunked forward (training mode: rwkv7::wkv7_state_passing per chunk) gives the logits of
// RNN-mode inference over the same tokens (eval mode: the per-step scan), and of the plain
// forward.
TEST(LongContext, ChunkedForwardIsRnnInference) {
  rwkv7::Run run(long_config({}), rwkv7::Run::Purpose::kBench);
  RWKV& model = run.model();
  perturb(model);
  const Batch b = batch_of(7, 2, 256);
  at::NoGradGuard no_grad;
  ModelState state = training_start_state(model, 2);
  std::vector<at::Tensor> parts;
  for (int64_t t0 = 0; t0 < 256; t0 += 48) {  // 48, 48, ..., 16: chunk lengths need not divide
    const at::Tensor tokens = b.x.slice(1, t0, std::min<int64_t>(t0 + 48, 256));
    parts.push_back(model->head(model->hidden(tokens, state)));
  }
  const at::Tensor chunked = at::cat(parts, 1);
  const at::Tensor plain = model->forward(b.x);
  model->eval();
  ModelState rnn = zero_state(model, 2);
  const at::Tensor inference = forward_with_state(model, b.x, rnn);
  model->train();
  std::printf("  chunked vs RNN inference: %.2e, vs the plain forward: %.2e\n", relative_error(chunked, inference),
              relative_error(chunked, plain));
  EXPECT_LE(relative_error(chunked, inference), 1e-5);
  EXPECT_LE(relative_error(chunked, plain), 1e-5);
}

// micro_bsz 1 x 4 micro-batches is micro_bsz 4, ignored targets included (each micro-batch's
// cross-entropy weighed by its share of the batch's targets), and with chunks inside each.
TEST(Accumulation, MicroBatchesAreTheWholeBatch) {
  const Trace whole = train(long_config({"micro_bsz=4"}, 256), 3, true);
  const double envelope = one_ulp_envelope(long_config({"micro_bsz=4"}, 256), 3, whole, true);
  expect_same_training(train(long_config({"micro_bsz=1", "accumulate_grad_batches=4"}, 256), 3, true), whole,
                       "micro_bsz 1 x 4 vs micro_bsz 4, a third of the targets ignored", 1e-5, envelope);
  expect_same_training(train(long_config({"micro_bsz=2", "accumulate_grad_batches=2", "chunk_ctx=64"}, 256), 3, true),
                       whole, "micro_bsz 2 x 2 in chunks of 64 vs micro_bsz 4", 1e-5, envelope);
  const Trace fused = train(long_config({"micro_bsz=4", "head_chunk=100"}, 256), 3);
  expect_same_training(train(long_config({"micro_bsz=2", "accumulate_grad_batches=2", "head_chunk=100"}, 256), 3), fused,
                       "micro_bsz 2 x 2 vs 4, head_chunk 100", 1e-5,
                       one_ulp_envelope(long_config({"micro_bsz=4", "head_chunk=100"}, 256), 3, fused));
}

TEST(LongContext, ChunkCtxMustDivideCtxLenInMultiplesOf16) {
  auto message = [](const std::vector<std::string>& o) {
    try {
      long_config(o);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(message({"chunk_ctx=100"}).find("chunk_ctx"), std::string::npos) << message({"chunk_ctx=100"});
  EXPECT_NE(message({"chunk_ctx=96"}).find("does not divide ctx_len 512"), std::string::npos) << message({"chunk_ctx=96"});
  EXPECT_NE(message({"bptt=truncated"}).find("chunk_ctx > 0"), std::string::npos) << message({"bptt=truncated"});
  EXPECT_NE(message({"chunk_ctx=64", "bptt=partial"}).find("bptt"), std::string::npos);
}

}  // namespace
}  // namespace rwkv7
