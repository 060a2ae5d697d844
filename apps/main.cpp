// rwkv7 <command> [options]: parse, dispatch, and turn every failure into one clear line.
#include <c10/util/Exception.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli.h"
#include "rwkv7/train/config.h"
#include "commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const Command kCommands[] = {
    {"prepare", rwkv7::cmd::prepare, "write rwkv-init.pth by the seed's init rules"},
    {"train", rwkv7::cmd::train, "train (or resume) as the seed's trainer does"},
    {"tokenize", rwkv7::cmd::tokenize, "jsonl text -> binidx tokens (bytes or the world tokenizer)"},
    {"generate", rwkv7::cmd::generate, "write text from a prompt (RNN mode, streamed)"},
    {"plot", rwkv7::cmd::plot, "draw loss, lr and tokens/s of a run into a PNG (gnuplot)"},
    {"bench", rwkv7::cmd::bench, "time training steps: tokens/s, forward/backward/optimizer, memory"},
    {"logits", rwkv7::cmd::logits, "run a checkpoint on tokens and print the logits as JSON"},
    {"convert", rwkv7::cmd::convert, "rewrite weights as a plain .pth dict or as safetensors (optionally another dtype)"},
    {"eval", rwkv7::cmd::eval, "evaluate a checkpoint: LAMBADA perplexity and accuracy, as RWKV-LM reports them"},
    {"merge", rwkv7::cmd::merge, "merge an RWKV-PEFT adapter (state, LoRA, DiSHA, PiSSA) into its base model"},
};

void print_usage() {
  std::printf("usage: rwkv7 <command> [options]   (rwkv7 <command> --help for its options)\n\n");
  std::printf("commands:\n");
  for (const auto& c : kCommands) std::printf("  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout or stderr (`rwkv7 train | head`, a dead tee, a dropped terminal) must not end
  // a run: writes to it then fail quietly, and the run goes on into its log files.
  std::signal(SIGPIPE, SIG_IGN);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(argc - 2, argv + 2);
    } catch (const rwkv7::cli::UsageError& e) {
      std::fprintf(stderr, "rwkv7 %s: %s\n", c.name, e.what());
      return 2;
    } catch (const c10::Error& e) {
      std::string msg = e.what_without_backtrace();
      msg = msg.substr(0, msg.find('\n'));
      std::fprintf(stderr, "rwkv7 %s: error: %s\n", c.name, msg.c_str());
      return 1;
    } catch (const rwkv7::ConfigError& e) {
      std::fprintf(stderr, "rwkv7 %s: config error: %s\n", c.name, e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rwkv7 %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "rwkv7: unknown command '%s' (rwkv7 --help lists them)\n", name.c_str());
  return 2;
}
