// rwkv7 eval --model M.pth --task lambada --input F.jsonl (--vocab V.txt | --tokenizer bytes)
//            [--limit N] [--out R.json] [--device cpu|cuda] [--batch-tokens N] [--skip-bad-lines]
//            [--state S.pth]
// LAMBADA perplexity and accuracy as RWKV-LM reports them (rwkv7/eval/lambada.h): one summary
// line, and the numbers as JSON (to --out, else to stdout after the summary). With --state every
// document starts from a tuned state (RWKV-PEFT's time_state, rwkv7/peft/tuned_state.h). The JSON is
// always JSON: no documents, or a score that is not finite, is refused; a ppl past a double's range
// is null with a ppl_note.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

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
        "                  (default 2^24 / vocabulary size); a longer document runs alone in windows of\n"
        "                  this many tokens that carry the RNN state (the same numbers, bounded memory)\n"
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
  if (args.has("out"))  // before the work, not after it
    cli::refuse_output_over_inputs("out", args.get("out", ""),
                                   {path, args.get("state", ""), args.get("input", ""), args.get("vocab", "")});
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
  const std::string input = args.require("input");
  const auto docs = read_lambada(input, *tok, args.has("skip-bad-lines"), limit, &skipped);
  if (docs.empty())  // a perplexity of no documents is not a number: refuse rather than write one
    throw std::runtime_error(input + ": no document to score (" +
                             (skipped ? fmt::format("{} line{} skipped", skipped, skipped == 1 ? "" : "s")
                                      : std::string("the file has no lines with text")) + ")");
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
  LambadaScore s;
  try {
    s = score_lambada(model, docs, device, batch_tokens, progress, state_path.empty() ? nullptr : &start);
  } catch (const NonFiniteScore& e) {
    if (tty) std::fprintf(stderr, "\n");
    throw std::runtime_error(fmt::format("{}: the log probabilities for line {} of {} are not finite ({}): the "
                                         "model's weights hold NaN or Inf?", path, e.line, input, std::isnan(e.score) ? "NaN" : "-inf"));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (tty && docs.size() >= 200) std::fprintf(stderr, "\n");

  // n > 0 and every score finite: only ppl can leave a double's range (a mean log probability
  // below -709.78), and JSON has no inf: null, and why
  const bool ppl_finite = std::isfinite(s.ppl());
  const std::string ppl_text = ppl_finite ? fmt::format("{:.4f}", s.ppl()) : "past a double's range";
  std::printf("LAMBADA: n %lld, ppl %s, acc %.2f%% (%lld skipped; %.1f s, %.2f ms per document)\n",
              static_cast<long long>(s.n), ppl_text.c_str(), 100 * s.acc(), static_cast<long long>(skipped), seconds,
              1e3 * seconds / double(s.n));
  const std::string ppl_json =
      ppl_finite ? fmt::format("{:.17g}", s.ppl())
                 : fmt::format("null, \"ppl_note\": \"exp(-log_prob_sum / n) = exp({:.17g}) overflows a double\"",
                               -s.log_prob_sum / double(s.n));
  const std::string json = fmt::format(
      "{{\"task\": \"lambada\", \"model\": \"{}\", {}\"n\": {}, \"ppl\": {}, \"acc\": {:.17g}, "
      "\"acc_percent\": {:.4f}, \"log_prob_sum\": {:.17g}, \"correct\": {}, \"skipped\": {}, \"seconds\": {:.3f}}}\n",
      json_escape(path), state_path.empty() ? "" : "\"state\": \"" + json_escape(state_path) + "\", ", s.n, ppl_json,
      s.acc(), 100 * s.acc(), s.log_prob_sum, s.correct, skipped, seconds);
  if (args.has("out")) {
    fs::write_file_atomically(args.get("out", ""), json);
  } else {
    std::fputs(json.c_str(), stdout);
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
      throw std::runtime_error(std::string("stdout: cannot write the result: ") + std::strerror(errno));
  }
  return 0;
}

}  // namespace rwkv7::cmd
