// rwkv7 generate --model M.pth (--tokenizer bytes | --vocab V.txt) --prompt TEXT
//                [--max-tokens 200] [--temperature 1.0] [--top-p 0.85] [--seed 0] [--state S.pth]
// The prompt runs in one pass; then one token at a time with the state carried (constant cost
// per token). Temperature 0 is greedy. Text streams to stdout as it is made. --state starts from
// a tuned state (RWKV-PEFT's time_state, rwkv7/peft/tuned_state.h) instead of 0. A write to stdout
// that fails (the reader of a pipe gone, a full disk) ends it with one line and status 1.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <tuple>

#include "cli.h"
#include "commands.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/inference.h"
#include "rwkv7/data/jsonl.h"
#include "rwkv7/model/load.h"
#include "rwkv7/data/tokenizer.h"
#include "rwkv7/peft/tuned_state.h"

namespace rwkv7::cmd {

namespace {

// temperature 0: argmax; else sample from softmax(logits / T) cut to the top-p mass
int64_t sample(const at::Tensor& logits, double temperature, double top_p, std::mt19937_64& rng) {
  if (temperature <= 0) return logits.argmax().item<int64_t>();
  const at::Tensor probs = at::softmax(logits.to(at::kDouble) / temperature, -1);
  auto [sorted, order] = probs.sort(-1, /*descending=*/true);
  const double* p = sorted.data_ptr<double>();
  int64_t keep = 0;
  double mass = 0;
  while (keep < sorted.numel() && (keep == 0 || mass < top_p)) mass += p[keep++];
  double u = std::uniform_real_distribution<double>(0.0, mass)(rng);
  for (int64_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u <= 0) return order[i].item<int64_t>();
  }
  return order[keep - 1].item<int64_t>();
}

// How many leading bytes of s form whole UTF-8 characters (so a token that ends mid-character
// waits for the next one).
size_t complete_utf8_prefix(const std::string& s) {
  size_t end = s.size();
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const unsigned char c = s[s.size() - back];
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    if (need > back) end = s.size() - back;
    break;
  }
  return end;
}

}  // namespace

int generate(int argc, char** argv) {
  const cli::Args args = cli::parse(
      argc, argv, {"model", "tokenizer", "vocab", "prompt", "max-tokens", "temperature", "top-p", "seed", "state"});
  if (args.help) {
    std::printf(
        "usage: rwkv7 generate --model M.pth (--tokenizer bytes | --vocab V.txt) --prompt TEXT\n"
        "                      [--max-tokens 200] [--temperature 1.0] [--top-p 0.85] [--seed 0] [--state S.pth]\n"
        "  --model  a checkpoint (.pth or .safetensors)\n"
        "  temperature 0 is greedy; generation stops at --max-tokens or the end-of-text token 0, or with an\n"
        "  error (status 1) when stdout cannot be written (a closed pipe: `| head`, a full disk)\n"
        "  --state  start from a tuned state: RWKV-PEFT's state-tuning rwkv-<n>.pth (blocks.<i>.att.time_state),\n"
        "           or a file rwkv7 merge wrote from one\n");
    return 0;
  }
  const double temperature = cli::parse_number("temperature", args.get("temperature", "1.0"), 0, 1e6);
  const double top_p = cli::parse_number("top-p", args.get("top-p", "0.85"), 0, 1);
  if (top_p == 0) throw cli::UsageError("--top-p must be > 0");
  const int64_t max_tokens = cli::parse_int("max-tokens", args.get("max-tokens", "200"), 0, int64_t(1) << 40);
  const int64_t seed = cli::parse_int("seed", args.get("seed", "0"), 0, INT64_MAX);
  std::mt19937_64 rng(static_cast<uint64_t>(seed));

  const auto tok = std::apply(make_tokenizer, cli::tokenizer_choice(args));
  const std::string path = args.require("model");
  RWKV model = load_model(path);
  model->eval();
  if (tok->vocab_size() > model->shape.vocab_size)
    throw cli::UsageError(fmt::format("the tokenizer's {} ids do not fit the model's vocabulary of {}",
                                      tok->vocab_size(), model->shape.vocab_size));
  const std::string prompt = args.require("prompt");
  if (prompt.empty()) throw cli::UsageError("--prompt must not be empty");
  if (!is_valid_utf8(prompt)) throw cli::UsageError("--prompt is not valid UTF-8");
  const std::vector<int64_t> ids = tok->encode(prompt);
  for (int64_t id : ids)
    if (id >= model->shape.vocab_size)
      throw cli::UsageError("the prompt has token id " + std::to_string(id) + " >= the model's vocabulary");

  if (args.has("state") && args.get("state", "").empty()) throw cli::UsageError("--state needs a file");
  ModelState state = initial_state(model, args.get("state", ""), 1);
  at::InferenceMode inference;
  at::Tensor logits = forward_with_state(model, at::tensor(ids, at::kLong).view({1, -1}), state)[0][-1];
  // SIGPIPE is ignored (main.cpp): a closed pipe or a full disk makes the write fail, and then
  // nobody reads what would follow: stop with one line instead of generating on unseen.
  int64_t made = 0;
  auto write = [&](const std::string& text) {
    if (std::fwrite(text.data(), 1, text.size(), stdout) == text.size() && std::fflush(stdout) == 0) return;
    const int err = errno;
    throw std::runtime_error(fmt::format("stdout: cannot write the text ({}){}; stopped after {} tokens",
                                         std::strerror(err), err == EPIPE ? ": the reader has gone" : "", made));
  };
  write(prompt);
  std::string pending;
  for (; made < max_tokens; ++made) {
    const int64_t next = sample(logits.to(at::kFloat), temperature, top_p, rng);
    if (next == 0) break;  // end of text
    pending += tok->decode({next});
    const size_t n = complete_utf8_prefix(pending);
    write(pending.substr(0, n));
    pending.erase(0, n);
    logits = forward_with_state(model, at::tensor({next}, at::kLong).view({1, 1}), state)[0][-1];
  }
  write(pending + "\n");
  return 0;
}

}  // namespace rwkv7::cmd
