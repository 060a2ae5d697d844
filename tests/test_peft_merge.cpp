// RWKV-PEFT adapters merged into their base (rwkv7/peft/merge.h) and a tuned state as the start of
// inference (rwkv7/peft/tuned_state.h), against RWKV-PEFT's own logits (tests/data/peft: its
// commit 5b8aac9 on the CPU in fp32, trained 20 steps on the tiny model); the one-line errors for
// adapters that do not fit; and `rwkv7 merge` end to end.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "golden.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/io/fs.h"
#include "rwkv7/model/inference.h"
#include "rwkv7/model/load.h"
#include "rwkv7/peft/merge.h"
#include "rwkv7/peft/tuned_state.h"

namespace rwkv7 {
namespace {

using testing::golden;
using testing::load_json;
using testing::max_abs_diff;

const std::string kBase = "tiny_rwkv7_834K/tiny-rwkv7-834K.pth";  // L12 D64 H1 N64 V256
constexpr double kLoraAlpha = 32;  // the golden LoRA run's lora_alpha (peft/lora/config.json)

std::string adapter_path(const std::string& method) { return golden("peft/" + method + "/rwkv-0.pth"); }

// RWKV-PEFT's logits ([T, V]) of one run: the prompt's ids and the model as trained (adapter
// unmerged), merged, and the base.
struct PeftLogits {
  std::vector<int64_t> ids;
  at::Tensor tuned, merged, base;
};

PeftLogits peft_logits(const std::string& method) {
  const YAML::Node j = load_json("peft/" + method + "/logits.json");
  auto rows = [&](const char* model) {
    std::vector<at::Tensor> out;
    for (const auto& row : j[model]["logits"].as<std::vector<std::vector<float>>>()) out.push_back(at::tensor(row));
    return at::stack(out);
  };
  return {j["ids"].as<std::vector<int64_t>>(), rows("tuned_model"), rows("merged_model"), rows("base_model")};
}

at::Tensor prompt(const std::vector<int64_t>& ids) { return at::tensor(ids, at::kLong).view({1, -1}); }

// The logits [T, V] of what a merged dict holds. A merged state keeps RWKV-PEFT's time_state keys
// beside the weights: they are the initial state (run in RNN mode), the rest the model.
at::Tensor run_merged(const StateDict& merged, const std::vector<int64_t>& ids) {
  StateDict weights, states;
  for (const auto& kv : merged) (kv.first.find("time_state") != std::string::npos ? states : weights).push_back(kv);
  RWKV model = model_from_state_dict(weights, "merged");
  model->eval();
  if (states.empty()) {
    at::NoGradGuard no_grad;
    return model->forward(prompt(ids))[0];
  }
  ModelState state = tuned_state(model, states, "merged", 1);
  return forward_with_state(model, prompt(ids), state)[0];
}

void expect_merge_matches_rwkv_peft(const std::string& method, std::optional<double> alpha) {
  const StateDict base = read_pth(golden(kBase));
  const StateDict merged =
      merge_adapter(base, read_pth(adapter_path(method)), alpha, golden(kBase), adapter_path(method));
  for (size_t i = 0; i < base.size(); ++i) {  // the base's keys, order and dtypes kept
    ASSERT_EQ(merged.at(i).first, base[i].first) << method;
    EXPECT_EQ(merged[i].second.scalar_type(), base[i].second.scalar_type()) << merged[i].first;
  }
  const PeftLogits want = peft_logits(method);
  ASSERT_GT(max_abs_diff(want.tuned, want.base), 0.1) << method;  // the adapter matters: a non-merge fails
  const at::Tensor got = run_merged(merged, want.ids);
  ASSERT_EQ(got.sizes(), want.merged.sizes()) << method;
  EXPECT_LE(max_abs_diff(got, want.merged), 1e-5) << method;
  EXPECT_LE(max_abs_diff(got, want.tuned), 1e-5) << method;
}

TEST(PeftMerge, StateMatchesRwkvPeft) { expect_merge_matches_rwkv_peft("state", std::nullopt); }
TEST(PeftMerge, LoraMatchesRwkvPeft) { expect_merge_matches_rwkv_peft("lora", kLoraAlpha); }
TEST(PeftMerge, DishaMatchesRwkvPeft) { expect_merge_matches_rwkv_peft("disha", std::nullopt); }

// PiSSA: W - B0 A0 + B A with RWKV-PEFT's start (init_pissa.pth) gives its tuned model. RWKV-PEFT's
// own merge rounds W - B0 A0 to bf16, so its merged model is 4.7e-4 away from its tuned one.
TEST(PeftMerge, PissaMatchesRwkvPeftsTunedModel) {
  const StateDict base = read_pth(golden(kBase)), init = read_pth(golden("peft/pissa/init_pissa.pth"));
  MergeReport report;
  const StateDict merged = merge_adapter(base, read_pth(adapter_path("pissa")), std::nullopt, golden(kBase),
                                         adapter_path("pissa"), &report, &init);
  EXPECT_EQ(report.merged, 12 * 6);
  const PeftLogits want = peft_logits("pissa");
  const at::Tensor got = run_merged(merged, want.ids);
  EXPECT_LE(max_abs_diff(got, want.tuned), 1e-5);
  EXPECT_LE(max_abs_diff(got, want.merged), 1e-3);
  EXPECT_THROW(merge_adapter(base, read_pth(adapter_path("pissa")), std::nullopt, golden(kBase), adapter_path("pissa")),
               CheckpointError);  // without its init (or an alpha) a LoRA-shaped adapter is not merged
}

// A merged state file is a model on its own: its time_state is where every sequence starts, in
// the parallel forward and in RNN mode alike.
TEST(PeftMerge, MergedStateFileIsAModelOnItsOwn) {
  const StateDict merged =
      merge_adapter(read_pth(golden(kBase)), read_pth(adapter_path("state")), std::nullopt, golden(kBase),
                    adapter_path("state"));
  RWKV model = model_from_state_dict(merged, "merged");
  model->eval();
  const PeftLogits want = peft_logits("state");
  at::NoGradGuard no_grad;
  EXPECT_LE(max_abs_diff(model->forward(prompt(want.ids))[0], want.tuned), 1e-5);
  ModelState state = zero_state(model, 1);
  EXPECT_LE(max_abs_diff(forward_with_state(model, prompt(want.ids), state)[0], want.tuned), 1e-5);
}

TEST(PeftMerge, KindsAndWhatChanged) {
  const StateDict base = read_pth(golden(kBase));
  MergeReport r;
  merge_adapter(base, read_pth(adapter_path("state")), std::nullopt, "b", "a", &r);
  EXPECT_EQ(r.kind, AdapterKind::state);
  EXPECT_EQ(r.added, 12);  // one time_state per layer
  EXPECT_EQ(r.merged + r.replaced, 0);
  merge_adapter(base, read_pth(adapter_path("lora")), kLoraAlpha, "b", "a", &r);
  EXPECT_EQ(r.kind, AdapterKind::lora);
  EXPECT_EQ(r.merged, 12 * 6);            // att.receptance/key/value/output, ffn.key/value
  EXPECT_EQ(r.replaced, 12 * 6 + 2 + 2);  // ln1, ln2, ln_x (weight, bias) per layer; ln0; ln_out
  merge_adapter(base, read_pth(adapter_path("disha")), std::nullopt, "b", "a", &r);
  EXPECT_EQ(r.kind, AdapterKind::disha);
  EXPECT_EQ(r.merged, 12 * 6);
}

// DiSHA (bone) on an input width that is not a multiple of r: RWKV-PEFT pads x with zeros to whole
// blocks, so the merged weight must give W x + (sum of x's r-wide blocks, padded) disha.
TEST(PeftMerge, DishaMergeIsTheForwardOfBoneWithPadding) {
  const int64_t out = 3, in = 5, r = 2;
  at::manual_seed(0);
  const at::Tensor W = at::randn({out, in}, at::kDouble), D = at::randn({r, out}, at::kDouble);
  const at::Tensor x = at::randn({4, in}, at::kDouble);
  const StateDict merged = merge_adapter({{"m.weight", W}}, {{"m.disha", D}}, std::nullopt, "b", "a");
  const at::Tensor padded = at::constant_pad_nd(x, {0, (r - in % r) % r});
  const at::Tensor want = at::linear(x, W) + at::matmul(padded.view({4, -1, r}).sum(1), D);
  EXPECT_LE(max_abs_diff(at::linear(x, find_tensor(merged, "m.weight")), want), 1e-12);
}

TEST(PeftMerge, KeepsTheBaseDtype) {
  StateDict base = read_pth(golden(kBase));
  for (auto& kv : base) kv.second = kv.second.to(at::kBFloat16);
  const StateDict merged = merge_adapter(base, read_pth(adapter_path("lora")), kLoraAlpha, "b", "a");
  for (const auto& kv : merged) EXPECT_EQ(kv.second.scalar_type(), at::kBFloat16) << kv.first;
  EXPECT_FALSE(at::equal(find_tensor(merged, "blocks.3.att.key.weight"), find_tensor(base, "blocks.3.att.key.weight")));
}

TEST(PeftTunedState, AdapterAsInitialStateMatchesRwkvPeft) {
  RWKV model = load_model(golden(kBase));
  model->eval();
  const PeftLogits want = peft_logits("state");
  {
    at::NoGradGuard no_grad;  // the base alone: RWKV-PEFT's base logits (zero state)
    EXPECT_LE(max_abs_diff(model->forward(prompt(want.ids))[0], want.base), 1e-5);
  }
  const std::string path = adapter_path("state");
  ModelState state = tuned_state(model, read_pth(path), path, 1);
  EXPECT_LE(max_abs_diff(forward_with_state(model, prompt(want.ids), state)[0], want.tuned), 1e-5);

  // a batch: every row starts from the same state (initial_state reads the file itself)
  ModelState two = initial_state(model, path, 2);
  ASSERT_EQ(two.at(0).wkv.sizes().vec(), std::vector<int64_t>({2, 1, 64, 64}));
  const at::Tensor batch = forward_with_state(model, prompt(want.ids).repeat({2, 1}), two);
  EXPECT_LE(max_abs_diff(batch[0], want.tuned), 1e-5);
  EXPECT_LE(max_abs_diff(batch[1], want.tuned), 1e-5);
  // an empty path: the zero state
  EXPECT_EQ(initial_state(model, "", 1).at(5).wkv.abs().max().item<float>(), 0.0f);
}

// `f` throws a CheckpointError of one line that names `tensor` and `file`.
template <typename F>
void expect_one_line_error(F f, const std::string& tensor, const std::string& file, const std::string& also = "") {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming " << tensor;
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(tensor), std::string::npos) << msg;
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    if (!also.empty()) EXPECT_NE(msg.find(also), std::string::npos) << msg;
  }
}

at::Tensor& entry(StateDict& d, const std::string& name) {
  for (auto& kv : d)
    if (kv.first == name) return kv.second;
  throw std::runtime_error("test setup: no " + name);
}

void remove_key(StateDict& d, const std::string& name) {
  const auto it = std::find_if(d.begin(), d.end(), [&](const auto& kv) { return kv.first == name; });
  if (it == d.end()) throw std::runtime_error("test setup: no " + name);
  d.erase(it);
}

TEST(PeftMerge, AdaptersThatDoNotFitGiveOneLineErrors) {
  const StateDict base = read_pth(golden(kBase)), lora = read_pth(adapter_path("lora"));
  auto merging = [&](const StateDict& b, const StateDict& a, std::optional<double> alpha = kLoraAlpha) {
    return [b, a, alpha] { merge_adapter(b, a, alpha, "B.pth", "A.pth"); };
  };
  {  // a base of another size: blocks.3.att.key takes 32 inputs there
    StateDict other = base;
    entry(other, "blocks.3.att.key.weight") = entry(other, "blocks.3.att.key.weight").narrow(1, 0, 32).contiguous();
    expect_one_line_error(merging(other, lora), "blocks.3.att.key.lora_A", "A.pth", "B.pth");
  }
  {  // lora_A of the wrong width, then a lora_B whose rank disagrees with its lora_A
    StateDict bad = lora;
    entry(bad, "blocks.2.ffn.value.lora_A") = entry(bad, "blocks.2.ffn.value.lora_A").narrow(1, 0, 128).contiguous();
    expect_one_line_error(merging(base, bad), "blocks.2.ffn.value.lora_A", "A.pth", "[8, 128]");
    bad = lora;
    entry(bad, "blocks.1.att.value.lora_B") = entry(bad, "blocks.1.att.value.lora_B").narrow(1, 0, 4).contiguous();
    expect_one_line_error(merging(base, bad), "blocks.1.att.value.lora_B", "A.pth");
  }
  {  // the base lacks a weight the adapter modifies, or a LayerNorm it replaces
    StateDict missing = base;
    remove_key(missing, "blocks.3.att.key.weight");
    expect_one_line_error(merging(missing, lora), "blocks.3.att.key.lora_A", "B.pth", "blocks.3.att.key.weight");
    missing = base;
    remove_key(missing, "ln_out.weight");
    expect_one_line_error(merging(missing, lora), "ln_out.weight", "B.pth");
  }
  {  // a LayerNorm of another width
    StateDict bad = lora;
    entry(bad, "blocks.4.ln2.bias") = at::zeros({32});
    expect_one_line_error(merging(base, bad), "blocks.4.ln2.bias", "A.pth");
  }
  // LoRA without its alpha, or a non-positive one
  expect_one_line_error(merging(base, lora, std::nullopt), "lora_A", "A.pth", "lora_alpha");
  expect_one_line_error(merging(base, lora, 0.0), "lora_A", "A.pth", "lora_alpha");
  {  // DiSHA for another output width
    StateDict bad = read_pth(adapter_path("disha"));
    entry(bad, "blocks.0.ffn.key.disha") = entry(bad, "blocks.0.ffn.key.disha").narrow(1, 0, 128).contiguous();
    expect_one_line_error(merging(base, bad, std::nullopt), "blocks.0.ffn.key.disha", "A.pth");
  }
  {  // a state for another head layout, and one for a layer the base does not have
    StateDict bad = read_pth(adapter_path("state"));
    entry(bad, "blocks.7.att.time_state") = at::zeros({2, 32, 32});
    expect_one_line_error(merging(base, bad, std::nullopt), "blocks.7.att.time_state", "A.pth", "[2, 32, 32]");
    bad = read_pth(adapter_path("state"));
    bad.emplace_back("blocks.12.att.time_state", at::zeros({1, 64, 64}));
    expect_one_line_error(merging(base, bad, std::nullopt), "blocks.12.att.time_state", "B.pth");
  }
  // not an adapter (the base itself), and two kinds in one file
  expect_one_line_error([&] { adapter_kind(base, "A.pth"); }, "time_state", "A.pth");
  StateDict mixed = lora;
  mixed.emplace_back("blocks.0.att.time_state", at::zeros({1, 64, 64}));
  expect_one_line_error([&] { adapter_kind(mixed, "A.pth"); }, "blocks.0.att.time_state", "A.pth", "lora");
}

TEST(PeftTunedState, StatesThatDoNotFitGiveOneLineErrors) {
  RWKV model = load_model(golden(kBase));
  const StateDict state = read_pth(adapter_path("state"));
  auto use = [&](const StateDict& file) { return [&model, file] { tuned_state(model, file, "S.pth", 1); }; };
  StateDict bad = state;
  entry(bad, "blocks.0.att.time_state") = at::zeros({2, 64, 64});
  expect_one_line_error(use(bad), "blocks.0.att.time_state", "S.pth", "is [2, 64, 64], this model needs [1, 64, 64]");
  bad = state;
  entry(bad, "blocks.6.att.time_state") = entry(bad, "blocks.6.att.time_state").transpose(0, 2);  // [64, 64, 1]
  expect_one_line_error(use(bad), "blocks.6.att.time_state", "S.pth", "[64, 64, 1]");
  bad = state;
  remove_key(bad, "blocks.5.att.time_state");
  expect_one_line_error(use(bad), "blocks.5.att.time_state", "S.pth");
  bad = state;
  bad.emplace_back("blocks.12.att.time_state", at::zeros({1, 64, 64}));
  expect_one_line_error(use(bad), "blocks.12.att.time_state", "S.pth");
  expect_one_line_error(use(read_pth(golden(kBase))), "time_state", "S.pth");  // no state at all
}

// `rwkv7 <args>` (the app beside the tests in the build tree), stdout and stderr into `dir`.
int run_app(const std::string& args, const std::string& dir) {
  const std::string app = std::string(RWKV7_BINARY_DIR) + "/rwkv7";
  if (!fs::exists(app)) throw std::runtime_error("the app is not built: " + app);
  const int status = std::system(("'" + app + "' " + args + " >'" + dir + "/stdout' 2>'" + dir + "/stderr'").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

TEST(PeftMerge, MergeCommandWritesTheInProcessMerge) {
  const std::string dir = testing::scratch_dir("peft_merge_cli");
  const std::string base = golden(kBase), adapter = adapter_path("lora"), out = dir + "/merged.pth";
  const std::string call = "merge --base " + quoted(base) + " --adapter " + quoted(adapter) + " --out ";
  ASSERT_EQ(run_app(call + quoted(out) + " --lora-alpha 32", dir), 0) << read_text(dir + "/stderr");
  EXPECT_NE(read_text(dir + "/stdout").find("LoRA"), std::string::npos) << read_text(dir + "/stdout");

  const StateDict written = read_pth(out);
  const StateDict expected = merge_adapter(read_pth(base), read_pth(adapter), kLoraAlpha, base, adapter);
  ASSERT_EQ(written.size(), expected.size());
  for (size_t i = 0; i < written.size(); ++i) EXPECT_EQ(written[i].first, expected[i].first);
  const std::string name = "blocks.3.att.key.weight";
  EXPECT_TRUE(at::equal(find_tensor(written, name), find_tensor(expected, name)));
  EXPECT_FALSE(at::equal(find_tensor(written, name), find_tensor(read_pth(base), name)));

  // without --lora-alpha: a non-zero exit, one line on stderr that says what is missing, no file
  const std::string none = dir + "/no-alpha.pth";
  EXPECT_NE(run_app(call + quoted(none), dir), 0);
  const std::string err = read_text(dir + "/stderr");
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("--lora-alpha"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(none));
}

}  // namespace
}  // namespace rwkv7
