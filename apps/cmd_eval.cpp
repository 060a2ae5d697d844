// rwkv7 eval --model M.pth --task lambada --input F.jsonl (--vocab V.txt | --tokenizer bytes)
//            [--limit N] [--out R.json] [--device cpu|cuda] [--batch-tokens N] [--skip-bad-lines]
//            [--state S.pth]
// LAMBADA perplexity and accuracy as RWKV-LM reports them (rwkv7/eval/lambada.h): one summary
// line, and the numbers as JSON (to --out, else to stdout after the summary). With --state every
// document starts from a tuned state (RWKV-PEFT's time_state, rwkv7/peft/tuned_state.h).
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "cli.h"
#include "commands.h"
#include "rwkv7/eval/lambada.h"
#include "rwkv7/io/fs.h"
#include "rwkv7/io/json.h"
#include "rwkv7/model/load.h"
#include "rwkv7/peft/tuned_state.h"

namespace rwkv7::cmd {

int eval(int argc, char** argv) {
  const cli::Args args = cli::parse(argc, argv, {"model", "task", "input", "vocab", "tokenizer", "limit", "out",
                                                 "device", "batch-tokens", "state"},
                                    {"skip-bad-lines"});
  if (args.help) {
    std::printf(
        "usage: rwkv7 eval --model M.pth --task lambada --input F.jsonl (--vocab V.txt | --tokenizer bytes)\n"
        "                  [--limit N] [--out R.json] [--device cpu|cuda] [--batch-tokens N] [--skip-bad-lines]\n"
        "                  [--state S.pth]\n"
        "  --model         a checkpoint (.pth or .safetensors)\n"
        "  --task          lambada: each line {\"text\": ...}; the last word is predicted from the rest\n"
        "  --limit         only the first N documents\n"
        "  --out           write the JSON result here (atomically)\n"
        "  --batch-tokens  documents of similar length run together, up to this many tokens\n"
        "                  (default 2^24 / vocabulary size)\n"
        "  --skip-bad-lines  leave out lines without text, without a space, or with an empty last word\n"
        "  --state         every document starts from a tuned state: RWKV-PEFT's state-tuning rwkv-<n>.pth\n"
        "                  (blocks.<i>.att.time_state), or a file rwkv7 merge wrote from one (runs in RNN mode)\n");
    return 0;
  }
  if (args.get("task", "lambada") != "lambada") throw cli::UsageError("--task: only lambada is known");
  const std::string device_name = args.get("device", "cpu");
  if (device_name != "cpu" && device_name != "cuda") throw cli::UsageError("--device must be cpu or cuda");
  if (device_name == "cuda" && !at::globalContext().hasCUDA()) throw cli::UsageError("--device cuda: no CUDA device");
  const at::Device device = device_name == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  const int64_t limit = cli::parse_int("limit", args.get("limit", "0"), 0, int64_t(1) << 40);
  const auto tok = std::apply(make_tokenizer, cli::tokenizer_choice(args));
  const std::string path = args.require("model");
  RWKV model = load_model(path);
  if (tok->vocab_size() > model->shape.vocab_size)
    throw cli::UsageError(fmt::format("the tokenizer's {} ids do not fit the model's vocabulary of {}",
                                      tok->vocab_size(), model->shape.vocab_size));
  const int64_t batch_tokens = cli::parse_int("batch-tokens", args.get("batch-tokens",
      std::to_string(std::max<int64_t>(1, (int64_t(1) << 24) / model->shape.vocab_size))), 1, int64_t(1) << 40);
  model->to(device);
  model->eval();
  const std::string state_path = args.get("state", "");
  if (args.has("state") && state_path.empty()) throw cli::UsageError("--state needs a file");
  const ModelState start = initial_state(model, state_path, 1);  // on the model's device

  int64_t skipped = 0;
  const auto docs = read_lambada(args.require("input"), *tok, args.has("skip-bad-lines"), limit, &skipped);
  const bool tty = ::isatty(fileno(stderr));
  int64_t last_shown = 0;
  auto progress = [&](int64_t done, int64_t total) {  // a line a tenth of the way off a terminal
    if (total < 200) return;
    if (tty) std::fprintf(stderr, "\r\033[Keval: %lld/%lld documents", static_cast<long long>(done), static_cast<long long>(total));
    else if (done * 10 / total > last_shown * 10 / total || done == total)
      std::fprintf(stderr, "eval: %lld/%lld documents\n", static_cast<long long>(done), static_cast<long long>(total));
    last_shown = done;
  };
  const auto t0 = std::chrono::steady_clock::now();
  const LambadaScore s =
      score_lambada(model, docs, device, batch_tokens, progress, state_path.empty() ? nullptr : &start);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (tty && docs.size() >= 200) std::fprintf(stderr, "\n");

  std::printf("LAMBADA: n %lld, ppl %.4f, acc %.2f%% (%lld skipped; %.1f s, %.2f ms per document)\n",
              static_cast<long long>(s.n), s.ppl(), 100 * s.acc(), static_cast<long long>(skipped), seconds,
              s.n ? 1e3 * seconds / double(s.n) : 0.0);
  const std::string json = fmt::format(
      "{{\"task\": \"lambada\", \"model\": \"{}\", {}\"n\": {}, \"ppl\": {:.17g}, \"acc\": {:.17g}, "
      "\"acc_percent\": {:.4f}, \"log_prob_sum\": {:.17g}, \"correct\": {}, \"skipped\": {}, \"seconds\": {:.3f}}}\n",
      json_escape(path), state_path.empty() ? "" : "\"state\": \"" + json_escape(state_path) + "\", ", s.n, s.ppl(),
      s.acc(), 100 * s.acc(), s.log_prob_sum, s.correct, skipped, seconds);
  if (args.has("out")) fs::write_file_atomically(args.get("out", ""), json);
  else std::fputs(json.c_str(), stdout);
  return 0;
}

}  // namespace rwkv7::cmd
