// rwkv7 prepare --config F.yaml [key=value ...]   writes proj_dir/rwkv-init.pth
// rwkv7 train   --config F.yaml [key=value ...]   the training run
#include <cstdio>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "rwkv7/train/config.h"
#include "rwkv7/train/trainer.h"

namespace rwkv7::cmd {

namespace {

void print_keys() {
  std::printf("\nconfig keys (YAML, or key=value on the command line):\n");
  for (const auto& [key, meaning] : train_config_keys()) std::printf("  %-15s %s\n", key.c_str(), meaning.c_str());
}

// --config, and key=value overrides; `--proj_dir X` is refused with a hint to write proj_dir=X
cli::Args parse_args(int argc, char** argv) {
  return cli::parse(argc, argv, {"config"}, {}, train_config_key_names());
}

TrainConfig config_from(const cli::Args& args) {
  return load_train_config(args.require("config"), args.positional);
}

}  // namespace

int prepare(int argc, char** argv) {
  const cli::Args args = parse_args(argc, argv);
  if (args.help) {
    std::printf("usage: rwkv7 prepare --config F.yaml [key=value ...]\n"
                "  writes <proj_dir>/rwkv-init.pth by the seed's init rules (bf16 when precision is bf16)\n");
    print_keys();
    return 0;
  }
  prepare_init(config_from(args));
  return 0;
}

int train(int argc, char** argv) {
  const cli::Args args = parse_args(argc, argv);
  if (args.help) {
    std::printf("usage: rwkv7 train --config F.yaml [key=value ...]\n"
                "  trains as the seed's train.py does; writes rwkv-<epoch>.pth, rwkv-final.pth,\n"
                "  train_log.txt and metrics.jsonl into proj_dir. train_stage >= 2 resumes from\n"
                "  the newest rwkv-<n>.pth there.\n");
    print_keys();
    return 0;
  }
  const TrainConfig cfg = config_from(args);
  const RunSummary s = rwkv7::train(cfg);
  if (s.steps == 0 && (s.stop_reason == "epoch_count" || s.stop_reason == "token budget")) {
    std::printf("the run in %s had already finished (%s reached); nothing to train\n", cfg.proj_dir.c_str(),
                s.stop_reason.c_str());
    return 0;
  }
  std::printf("stopped (%s) after %lld steps; last loss %.4f\n", s.stop_reason.c_str(),
              static_cast<long long>(s.steps), s.last_loss);
  return 0;
}

}  // namespace rwkv7::cmd
