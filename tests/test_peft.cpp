// Fine-tuning against RWKV-PEFT's own runs (tests/data/peft/: JL-er/RWKV-PEFT at 5b8aac9, CPU,
// fp32, from the tiny model on lambada_bytes, 20 steps each): per-step loss, lr and gradient
// norm, the gradients of step 0, the trained file it writes, and the tuned model's logits. Then
// what RWKV-PEFT does not test: document batches, frozen weights, resume, bad input.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <algorithm>
#include <functional>
#include <map>
#include <regex>

#include "golden.h"
#include "run_metrics.h"
#include "rwkv7/data/data.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/load.h"
#include "rwkv7/peft/adapters.h"
#include "rwkv7/train/config.h"
#include "rwkv7/train/loss.h"
#include "rwkv7/train/run.h"
#include "rwkv7/train/trainer.h"

namespace rwkv7 {
namespace {

using testing::golden;
using testing::golden_binidx;
using testing::load_json;
using testing::relative_error;
using testing::scratch_dir;

const char* const kTinyModel = "tiny_rwkv7_834K/tiny-rwkv7-834K.pth";

// RWKV-PEFT's settings for `method` (its config.json: ctx 64, micro_bsz 2, 20 steps = one
// mini-epoch, Adam (0.9, 0.99) eps 1e-8, no decay, clip 1, cos schedule, documents in order).
std::string peft_yaml(const std::string& method, const std::string& proj_dir) {
  std::string y = "proj_dir: " + proj_dir + "\ndata_file: " + golden_binidx("data/lambada_bytes") +
                  "\nvocab_size: 256\nctx_len: 64\nn_layer: 12\nn_embd: 64\nmicro_bsz: 2\n"
                  "beta1: 0.9\nbeta2: 0.99\nadam_eps: 1e-8\nweight_decay: 0\ngrad_clip: 1.0\n"
                  "epoch_save: 1\nepoch_steps: 20\nepoch_count: 1\ndataload: pad\ndata_shuffle: 0\n"
                  "lr_schedule: cos\ndevice: cpu\nrandom_seed: 42\nload_model: " + golden(kTinyModel) + "\n";
  if (method == "state") return y + "train_type: state\nlr_init: 1.0\nlr_final: 0.01\n";
  y += "lr_init: 6e-4\nlr_final: 1e-5\npeft: " + method + "\nlora_load: " + golden("peft/" + method + "/init.pth") + "\n";
  if (method == "lora") y += "lora_r: 8\nlora_alpha: 32\nlora_dropout: 0\n";
  if (method == "disha") y += "disha_r: 64\n";
  if (method == "pissa") y += "pissa_r: 8\nsvd_niter: 4\npissa_init: " + golden("peft/pissa/init_pissa.pth") + "\n";
  return y;
}

using testing::read_metrics;
using testing::Step;

// [rows, V] logits of a JSON list of lists
at::Tensor logits_of(const YAML::Node& rows) {
  std::vector<at::Tensor> out;
  for (const auto& row : rows) out.push_back(at::tensor(row.as<std::vector<double>>(), at::kDouble));
  return at::stack(out);
}

// The run in `proj_dir` took RWKV-PEFT's 20 steps: lr, loss (1e-5) and gradient norm (1e-4 relative).
void expect_steps_of_rwkv_peft(const std::string& method, const std::string& proj_dir) {
  const YAML::Node ref = load_json("peft/" + method + "/reference.json")["steps"];
  const std::vector<Step> ours = read_metrics(proj_dir);
  ASSERT_EQ(ours.size(), 20u);
  double worst_loss = 0, worst_gn = 0;
  for (size_t i = 0; i < 20; ++i) {
    const double loss = ref[i]["loss"].as<double>(), lr = ref[i]["lr"].as<double>(), gn = ref[i]["grad_norm"].as<double>();
    EXPECT_NEAR(ours[i].lr, lr, 1e-9 * lr) << "step " << i;
    EXPECT_NEAR(ours[i].loss, loss, 1e-5) << "step " << i;
    EXPECT_NEAR(ours[i].grad_norm, gn, 1e-4 * gn) << "step " << i;
    worst_loss = std::max(worst_loss, std::fabs(ours[i].loss - loss));
    worst_gn = std::max(worst_gn, std::fabs(ours[i].grad_norm - gn) / gn);
  }
  std::printf("  %s 20 steps: loss within %.2e, grad norm within %.2e relative\n", method.c_str(), worst_loss, worst_gn);
}

void expect_golden_peft_run(const std::string& method) {
  const std::string dir = scratch_dir("peft-" + method);
  const TrainConfig cfg = parse_train_config(peft_yaml(method, dir + "/run"), "test");

  // step 0's gradients, before clipping, from the real step
  {
    const TrainConfig probe = parse_train_config(peft_yaml(method, dir + "/probe"), "test");
    rwkv7::Run run(probe);
    StateDict grads;
    run.on_gradients = [&](RWKV& model) {
      for (const auto& p : model->named_parameters())
        if (p.value().requires_grad()) grads.emplace_back(p.key(), p.value().grad().clone());
    };
    run.step(run.batch(0, 0), probe.lr_init);
    const StateDict want = read_pth(golden("peft/" + method + "/grads_step0.pth"));
    ASSERT_EQ(grads.size(), want.size()) << "trained tensors";
    double worst = 0;
    for (const auto& [name, g] : want) {
      const double e = relative_error(find_tensor(grads, name), g);
      worst = std::max(worst, e);
      EXPECT_LE(e, 1e-5) << name;
    }
    std::printf("  %s step-0 gradients: worst relative error %.2e over %zu tensors\n", method.c_str(), worst, want.size());
  }

  // 20 steps: loss, lr, grad norm of every step
  const RunSummary summary = train(cfg);
  EXPECT_EQ(summary.steps, 20);
  EXPECT_EQ(summary.stop_reason, "epoch_count");
  expect_steps_of_rwkv_peft(method, dir + "/run");

  // The trained file: RWKV-PEFT's names, fp32, its values. Element by element, 0.1-0.2% of them
  // differ by more than 1e-5 of their tensor's largest: elements whose gradient is at fp32 rounding
  // level (|g| ~ 1e-9 where the tensor's largest is 1e-2), where Adam's step lr m / (sqrt(v) + 1e-8)
  // turns rounding into a different update. So the 1e-5 bound holds for the file as one vector
  // (relative L2), and each tensor is held to the larger of 1e-5 and how far rounding alone moves
  // this run: the same run from a base moved by one ulp (up, down), its most sensitive tensor.
  std::vector<StateDict> nudged;
  for (const double direction : {1e9, -1e9}) {
    const std::string tag = direction > 0 ? "up" : "down", path = dir + "/base-1ulp-" + tag + ".pth";
    StateDict base = read_pth(golden(kTinyModel));
    for (auto& [name, t] : base) t = at::nextafter(t, at::full_like(t, direction));
    write_pth(path, base);
    train(parse_train_config(peft_yaml(method, dir + "/nudged-" + tag), "test", {"load_model=" + path}));
    nudged.push_back(read_pth(dir + "/nudged-" + tag + "/rwkv-0.pth"));
  }
  const StateDict got = read_pth(dir + "/run/rwkv-0.pth");
  const StateDict want = read_pth(golden("peft/" + method + "/rwkv-0.pth"));
  ASSERT_EQ(got.size(), want.size());
  auto l2 = [](const at::Tensor& t) { return t.to(at::kDouble).pow(2).sum().item<double>(); };
  double worst_envelope = 0;
  for (const auto& [name, w] : want)
    for (const StateDict& alt : nudged)
      worst_envelope = std::max(worst_envelope, std::sqrt(l2(find_tensor(got, name) - find_tensor(alt, name)) /
                                                          l2(find_tensor(got, name))));
  double diff2 = 0, norm2 = 0, worst = 0;
  int64_t within = 0, elements = 0;
  for (const auto& [name, w] : want) {
    const at::Tensor& t = find_tensor(got, name);
    EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
    const double e = std::sqrt(l2(t - w) / l2(w));
    EXPECT_LE(e, std::max(1e-5, worst_envelope)) << name << " (relative L2)";
    worst = std::max(worst, e);
    diff2 += l2(t - w);
    norm2 += l2(w);
    within += ((t - w).abs() <= 1e-5 * w.abs().max()).sum().item<int64_t>();
    elements += w.numel();
  }
  const double whole = std::sqrt(diff2 / norm2);
  EXPECT_LE(whole, 1e-5);
  EXPECT_GE(within, elements - elements / 200);  // the rounding-level elements are rare
  std::printf("  %s rwkv-0.pth: %zu tensors; relative L2 error %.2e for the file, worst tensor %.2e (1-ulp "
              "envelope %.2e); %lld of %lld elements within 1e-5 of their tensor's largest\n",
              method.c_str(), want.size(), whole, worst, worst_envelope, static_cast<long long>(within),
              static_cast<long long>(elements));

  // the tuned model (base + our trained file) on the prompt: RWKV-PEFT's tuned logits
  const YAML::Node logits = load_json("peft/" + method + "/logits.json");
  RWKV model = load_model(golden(kTinyModel));
  const std::string pissa_path = golden("peft/pissa/init_pissa.pth");
  const StateDict pissa_start = read_pth(pissa_path);
  add_adapters(model, cfg.peft_options(), 0, method == "pissa" ? &pissa_start : nullptr, pissa_path);
  load_trained_tensors(model, got, cfg.peft_options(), dir + "/run/rwkv-0.pth");
  model->eval();
  at::NoGradGuard no_grad;
  const at::Tensor ids = at::tensor(logits["ids"].as<std::vector<int64_t>>(), at::kLong).unsqueeze(0);
  const double d = testing::max_abs_diff(model->forward(ids)[0], logits_of(logits["tuned_model"]["logits"]));
  std::printf("  %s tuned model logits: max |difference| %.2e\n", method.c_str(), d);
  EXPECT_LE(d, 1e-5);
}

TEST(PeftGolden, StateTuning) { expect_golden_peft_run("state"); }
TEST(PeftGolden, Lora) { expect_golden_peft_run("lora"); }
TEST(PeftGolden, Disha) { expect_golden_peft_run("disha"); }
// fused_ops: 1 applies to fine-tuning: the same steps (under dataload pad the loss stays ATen's,
// the fused cross-entropy taking no ignored targets).
TEST(PeftGolden, StateAndLoraWithFusedOps) {
  for (const std::string method : {"state", "lora"}) {
    const std::string dir = scratch_dir("peft-fused-" + method);
    train(parse_train_config(peft_yaml(method, dir), "test", {"fused_ops=1"}));
    expect_steps_of_rwkv_peft(method, dir);
  }
}

// PiSSA from RWKV-PEFT's own start (its randomized SVD's B0, A0: init.pth and init_pissa.pth)
TEST(PeftGolden, Pissa) { expect_golden_peft_run("pissa"); }

// Our own PiSSA start: the frozen residual plus B0 A0 is W again, and B0 A0 is close to W's best
// rank-r part. With svd_niter 4 (RWKV-PEFT's default) the residual is within 1% of the optimum
// (Eckart-Young: the norm of W's other singular values; torch.svd_lowrank reaches 0.44% on this
// weight, whose spectrum is flat: s4/s5 = 0.98, so convergence is slow); with 300 iterations the top
// singular values are W's to 1e-4.
TEST(Peft, PissaStartIsTheTopSingularPartOfEachWeight) {
  for (const int niter : {4, 300}) {
    TrainConfig cfg = parse_train_config(peft_yaml("pissa", scratch_dir("peft-pissa-init")), "test",
                                         {"lora_load=", "pissa_init=", "pissa_r=4", "svd_niter=" + std::to_string(niter)});
    RWKV base = load_model(golden(kTinyModel)), model = load_model(golden(kTinyModel));
    const StateDict start = add_adapters(model, cfg.peft_options(), 7);
    ASSERT_EQ(start.size(), 12u * 6 * 2);
    const Linear& layer = model->block_list[5]->ffn->key;
    const at::Tensor W = base->block_list[5]->ffn->key->weight.to(at::kDouble);
    const at::Tensor BA = at::matmul(layer->lora_B, layer->lora_A).to(at::kDouble);
    EXPECT_LE(testing::max_abs_diff(layer->weight.to(at::kDouble) + BA, W), 1e-6);
    EXPECT_EQ(layer->lora_scale, 1.0);
    const at::Tensor S = at::linalg_svdvals(W);
    const double optimum = S.slice(0, 4).pow(2).sum().sqrt().item<double>();
    const double ratio = at::linalg_norm(W - BA).item<double>() / optimum;
    std::printf("  svd_niter %d: residual %.5f x the rank-4 optimum\n", niter, ratio);
    if (niter == 4) EXPECT_LE(ratio, 1.01);
    else EXPECT_LE(relative_error(at::linalg_svdvals(BA).slice(0, 0, 4), S.slice(0, 0, 4)), 1e-4);
  }
}

// ---- beyond RWKV-PEFT's runs ----

// Documents of 3, 10 and 2 tokens; ctx_len 4: a sample is 5 tokens from a document's start,
// running on into the next ones (past the end: the first), targets past the document ignored.
TEST(Peft, DocumentBatchesIgnoreTargetsPastTheDocument) {
  const std::string dir = scratch_dir("peft-pad");
  {
    BinIdxWriter w(dir + "/docs");
    w.add_document({1, 2, 3});
    w.add_document({10, 11, 12, 13, 14, 15, 16, 17, 18, 19});
    w.add_document({30, 31});
    w.finish();
  }
  BinIdx data(dir + "/docs");
  std::vector<int64_t> out(5);
  EXPECT_EQ(data.read_document(0, 5, out.data()), 3u);
  EXPECT_EQ(out, (std::vector<int64_t>{1, 2, 3, 10, 11}));
  EXPECT_EQ(data.read_document(2, 5, out.data()), 2u);
  EXPECT_EQ(out, (std::vector<int64_t>{30, 31, 1, 2, 3}));  // RWKV-PEFT: on from the first document

  std::string yaml = peft_yaml("state", dir + "/run");
  yaml = std::regex_replace(yaml, std::regex("data_file: [^\n]*"), "data_file: " + dir + "/docs");
  yaml = std::regex_replace(yaml, std::regex("ctx_len: 64"), "ctx_len: 4");
  rwkv7::Run run(parse_train_config(yaml, "test", {"micro_bsz=1", "epoch_steps=2"}));
  const Batch b0 = run.batch(0, 0), b1 = run.batch(0, 1), b3 = run.batch(1, 1);
  EXPECT_TRUE(at::equal(b0.x[0], at::tensor({1, 2, 3, 10}, at::kLong)));
  EXPECT_TRUE(at::equal(b0.y[0], at::tensor({2, 3, -100, -100}, at::kLong)));
  EXPECT_TRUE(at::equal(b1.x[0], at::tensor({10, 11, 12, 13}, at::kLong)));
  EXPECT_TRUE(at::equal(b1.y[0], at::tensor({11, 12, 13, 14}, at::kLong)));
  EXPECT_TRUE(at::equal(b3.x[0], at::tensor({1, 2, 3, 10}, at::kLong)));  // sample 3: the 4th document = the first again
}

// Frozen weights keep their values and get no optimizer state; only time_state is trained.
// grad_cp 1 recomputes each block in the backward pass; the recompute must draw the forward's
// LoRA dropout masks again (RWKV-PEFT's torch.utils.checkpoint keeps the RNG state for this), so
// the gradients are those of the same model without checkpointing.
TEST(Peft, GradientCheckpointingRedrawsTheSameLoraDropout) {
  const TrainConfig cfg = parse_train_config(peft_yaml("lora", scratch_dir("peft-cp-dropout")), "test",
                                             {"lora_dropout=0.5"});
  auto lora_model = [&] {
    RWKV m = load_model(golden(kTinyModel));
    add_adapters(m, cfg.peft_options(), 7);
    freeze_all_but_trained(m, cfg.peft_options());
    at::manual_seed(5);  // lora_B starts at 0: give it values, so that A's gradient sees the masks
    at::NoGradGuard no_grad;
    for (auto& p : m->named_parameters())
      if (p.key().size() > 7 && p.key().substr(p.key().size() - 7) == ".lora_B") p.value().copy_(at::randn_like(p.value()) * 0.01);
    return m;
  };
  RWKV plain = lora_model(), ckpt = lora_model();
  ckpt->gradient_checkpointing = true;
  const int64_t V = plain->shape.vocab_size;
  at::manual_seed(3);
  const at::Tensor idx = at::randint(0, V, {2, 32}, at::kLong), tgt = at::randint(0, V, {2, 32}, at::kLong);
  for (RWKV* m : {&plain, &ckpt}) {
    at::manual_seed(11);  // the same masks in both forwards
    cross_entropy_l2wrap((*m)->forward(idx), tgt).backward();
  }
  const auto a = plain->named_parameters(), b = ckpt->named_parameters();
  int64_t compared = 0;
  for (const auto& p : a) {
    if (!p.value().requires_grad()) continue;
    ASSERT_EQ(p.value().grad().defined(), b[p.key()].grad().defined()) << p.key();
    if (!p.value().grad().defined()) continue;  // unused by this model (as without checkpointing)
    EXPECT_LE(relative_error(b[p.key()].grad(), p.value().grad()), 1e-5) << p.key();
    ++compared;
  }
  EXPECT_GE(compared, 12 * 6 * 2 - 4);  // lora_A and lora_B of the 6 linear layers of 12 blocks
}

TEST(Peft, FrozenWeightsGetNoGradientAndNoOptimizerState) {
  const std::string dir = scratch_dir("peft-frozen");
  rwkv7::Run run(parse_train_config(peft_yaml("state", dir + "/run"), "test"));
  const at::Tensor head = run.model()->head->weight.clone(), key = run.model()->block_list[3]->att->key->weight.clone();
  run.step(run.batch(0, 0), 1.0);
  EXPECT_TRUE(at::equal(run.model()->head->weight, head));
  EXPECT_TRUE(at::equal(run.model()->block_list[3]->att->key->weight, key));
  EXPECT_FALSE(run.model()->head->weight.grad().defined());
  EXPECT_GT(run.model()->block_list[3]->att->time_state.abs().max().item<double>(), 0.1);  // lr 1 moved it
  int moments = 0;
  for (const auto& [name, t] : run.optimizer().state_dict()) {
    EXPECT_NE(name.find("time_state"), std::string::npos) << name;
    moments += name.rfind("exp_avg.", 0) == 0;
  }
  EXPECT_EQ(moments, 12);
  EXPECT_EQ(run.saved_weights().size(), 12u);
}

// Stopped after one mini-epoch and resumed (train_stage 3): the same steps and adapter as one run,
// LoRA's dropout included (its draws are seeded per mini-epoch from random_seed).
TEST(Peft, ExactResumeOfALoraRun) {
  const std::string whole = scratch_dir("peft-resume-whole"), parts = scratch_dir("peft-resume-parts");
  const std::vector<std::string> two_epochs{"epoch_steps=5", "epoch_count=2", "lora_dropout=0.01"};
  train(parse_train_config(peft_yaml("lora", whole), "test", two_epochs));
  auto first = two_epochs;
  first.push_back("epoch_limit=1");
  train(parse_train_config(peft_yaml("lora", parts), "test", first));
  auto rest = two_epochs;
  rest.push_back("train_stage=3");
  const RunSummary resumed = train(parse_train_config(peft_yaml("lora", parts), "test", rest));
  EXPECT_EQ(resumed.steps, 5);
  const std::vector<Step> a = read_metrics(whole), b = read_metrics(parts);
  ASSERT_EQ(a.size(), 10u);
  ASSERT_EQ(b.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_NEAR(b[i].loss, a[i].loss, 1e-6) << "step " << i;
    EXPECT_EQ(b[i].lr, a[i].lr) << "step " << i;
  }
  const StateDict wa = read_pth(whole + "/rwkv-1.pth"), wb = read_pth(parts + "/rwkv-1.pth");
  ASSERT_EQ(wa.size(), wb.size());
  for (const auto& [name, t] : wa) EXPECT_LE(testing::max_abs_diff(find_tensor(wb, name), t), 1e-6) << name;
}

// One clear line for each of: a rank of 0, an adapter of another rank or kind, a base that lacks
// a tensor.
TEST(Peft, BadInputIsOneClearLine) {
  const std::string dir = scratch_dir("peft-bad");
  auto message = [&](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(no error)";
  };
  auto expect_line_with = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  expect_line_with(message([&] { parse_train_config(peft_yaml("lora", dir + "/r0"), "test", {"lora_r=0"}); }),
                   "'lora_r'");
  expect_line_with(message([&] { rwkv7::Run run(parse_train_config(peft_yaml("lora", dir + "/r4"), "test", {"lora_r=4"})); }),
                   "blocks.0.att.receptance.lora_A is [8, 64], this model needs [4, 64]");
  expect_line_with(message([&] {
                     rwkv7::Run run(parse_train_config(peft_yaml("lora", dir + "/kind"), "test",
                                                {"lora_load=" + golden("peft/disha/init.pth")}));
                   }),
                   "disha is not a tensor this run trains");
  StateDict base = read_pth(golden(kTinyModel));
  base.erase(std::remove_if(base.begin(), base.end(), [](const auto& kv) { return kv.first == "blocks.3.att.key.weight"; }),
             base.end());
  write_pth(dir + "/partial.pth", base);
  expect_line_with(message([&] {
                     rwkv7::Run run(parse_train_config(peft_yaml("state", dir + "/partial"), "test",
                                                {"load_model=" + dir + "/partial.pth"}));
                   }),
                   "missing [blocks.3.att.key.weight]");
}

}  // namespace
}  // namespace rwkv7
