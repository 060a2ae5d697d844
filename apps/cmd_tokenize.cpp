// rwkv7 tokenize --vocab V.txt | --tokenizer bytes --input X.jsonl --output PREFIX
//                [--ctx-len 512] [--skip-bad-lines]
// Each line {"text": ...} becomes its tokens plus a 0 (end of text), one binidx document per
// line (uint16, MMIDIDX v1), as the seed's data is made. Prints the token count and the
// magic_prime for --ctx-len. Written to temporary files and renamed only when complete.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <tuple>
#include <fstream>

#include "cli.h"
#include "commands.h"
#include "rwkv7/data/data.h"
#include "rwkv7/data/jsonl.h"
#include "rwkv7/data/tokenizer.h"
#include "rwkv7/io/fs.h"

namespace rwkv7::cmd {

int tokenize(int argc, char** argv) {
  const cli::Args args = cli::parse(argc, argv, {"vocab", "tokenizer", "input", "output", "ctx-len"},
                                    {"skip-bad-lines"});
  if (args.help) {
    std::printf(
        "usage: rwkv7 tokenize (--vocab rwkv_vocab_v20230424.txt | --tokenizer bytes)\n"
        "                      --input X.jsonl --output PREFIX [--ctx-len 512] [--skip-bad-lines]\n"
        "  one {\"text\": ...} per line -> PREFIX.bin/.idx (tokens + 0 per line)\n"
        "  bad lines (not JSON, no text, invalid UTF-8) stop the run with their line number,\n"
        "  or with --skip-bad-lines are reported and left out\n");
    return 0;
  }
  const auto tok = std::apply(make_tokenizer, cli::tokenizer_choice(args));
  const int64_t ctx_len = cli::parse_int("ctx-len", args.get("ctx-len", "512"), 1, int64_t(1) << 30);
  if (ctx_len < 1) throw cli::UsageError("--ctx-len must be >= 1");
  const std::string input = args.require("input");
  if (fs::is_directory(input)) throw std::runtime_error(input + ": is a directory, not a jsonl file");
  std::ifstream in(input, std::ios::binary);
  if (!in) throw std::runtime_error(input + ": cannot open");
  in.seekg(0, std::ios::end);
  const double total_bytes = static_cast<double>(in.tellg());
  in.seekg(0);

  for (const char* ext : {".bin", ".idx"})
    cli::refuse_output_over_inputs("output", args.require("output") + ext, {input, args.get("vocab", "")});
  BinIdxWriter out(args.require("output"));
  const bool tty = ::isatty(fileno(stderr));
  const auto t0 = std::chrono::steady_clock::now();
  std::string line, text;
  int64_t n = 0, skipped = 0;
  double done_bytes = 0;
  while (std::getline(in, line)) {
    ++n;
    done_bytes += line.size() + 1;
    if (line.empty() || line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string why = parse_text_line(line, &text);
    if (!why.empty()) {
      if (!args.has("skip-bad-lines"))
        throw std::runtime_error(fmt::format("{}:{}: {} (nothing written; --skip-bad-lines leaves such lines out)", input, n, why));
      std::fprintf(stderr, "%s%s:%lld: %s (skipped)\n", tty ? "\r\033[K" : "", input.c_str(), static_cast<long long>(n), why.c_str());
      ++skipped;
      continue;
    }
    std::vector<int64_t> ids = tok->encode(text);
    ids.push_back(0);
    out.add_document(ids);
    if (tty && n % 1000 == 0)
      std::fprintf(stderr, "\r%5.1f%%  %llu documents, %llu tokens\033[K", 100.0 * done_bytes / std::max(1.0, total_bytes),
                   static_cast<unsigned long long>(out.num_documents()), static_cast<unsigned long long>(out.num_tokens()));
  }
  out.finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (tty) std::fprintf(stderr, "\r\033[K");
  const uint64_t prime = suggest_magic_prime(out.num_tokens(), ctx_len);
  std::printf("%s.bin/.idx: %llu documents, %llu tokens (%lld lines skipped) in %.2f s\n",
              args.require("output").c_str(), static_cast<unsigned long long>(out.num_documents()),
              static_cast<unsigned long long>(out.num_tokens()), static_cast<long long>(skipped), secs);
  if (prime) std::printf("magic_prime for ctx_len %lld: %llu\n", static_cast<long long>(ctx_len), static_cast<unsigned long long>(prime));
  else std::printf("too little data for ctx_len %lld: no magic_prime\n", static_cast<long long>(ctx_len));
  return 0;
}

}  // namespace rwkv7::cmd
