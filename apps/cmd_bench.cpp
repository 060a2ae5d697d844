// rwkv7 bench --config F.yaml [--steps N] [--warmup W] [--out F.json] [--profile F.json] [key=value ...]
// Times the trainer's own step (Run::step) on the config's model with random tokens (no data
// needed): tokens/s, the step split into forward, backward and optimizer, and peak memory.
// Under torchrun it times the data-parallel step (ZeRO included) and rank 0 prints every rank's
// peak memory; tokens/s counts all processes.
// --profile runs the timed steps under PyTorch's profiler and writes the top kernels by time
// (their timing then includes the profiler's overhead; the row says "profiled": true).
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "cli.h"
#include "commands.h"
#include "rwkv7/io/fs.h"
#include "rwkv7/io/json.h"
#include "rwkv7/train/flops.h"
#include "rwkv7/train/profile.h"
#include "rwkv7/train/config.h"
#include "rwkv7/train/run.h"

namespace rwkv7::cmd {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int bench(int argc, char** argv) {
  const cli::Args args =
      cli::parse(argc, argv, {"config", "steps", "warmup", "out", "profile"}, {}, train_config_key_names());
  if (args.help) {
    std::printf("usage: rwkv7 bench --config F.yaml [--steps 20] [--warmup 3] [--out F.json] [--profile F.json]\n"
                "                   [key=value ...]\n"
                "  times training steps (forward, backward, optimizer) of the config's model on random\n"
                "  tokens; reports tokens/s and peak memory as JSON. --profile: the timed steps under\n"
                "  PyTorch's profiler; F.json gets the top ten kernels (GPU) or operators (CPU) by time\n");
    return 0;
  }
  const TrainConfig config = load_train_config(args.require("config"), args.positional);
  const int64_t steps = cli::parse_int("steps", args.get("steps", "20"), 1, 1000000);
  const int64_t warmup = cli::parse_int("warmup", args.get("warmup", "3"), 0, 1000000);

  // The trainer's own Run and step(): the model `rwkv7 train` builds for this config, freshly
  // initialised, on random tokens (no data needed).
  Run run(config, Run::Purpose::kBench);
  const TrainConfig& cfg = run.config();
  const bool cuda = run.device().is_cuda();
  at::manual_seed(0);
  reset_peak_memory(run.device());  // the steps' peak, not the model's set-up (every rank builds it whole)
  const double start_bytes = static_cast<double>(current_memory_bytes(run.device()));
  std::vector<double> fwd, bwd, opt, total;
  double last_loss = 0;
  std::unique_ptr<StepProfiler> profiler;
  for (int64_t i = 0; i < warmup + steps; ++i) {
    if (i == warmup && args.has("profile")) profiler = std::make_unique<StepProfiler>(cuda);
    const at::Tensor tokens = at::randint(0, cfg.vocab_size, {cfg.samples_per_step(), cfg.ctx_len + 1}, at::kLong);
    const StepResult r = run.step({tokens.slice(1, 0, cfg.ctx_len), tokens.slice(1, 1, cfg.ctx_len + 1)},
                                  cfg.lr_init, /*stop_signal=*/0, /*timed=*/true);
    last_loss = r.loss;
    if (i >= warmup) {
      fwd.push_back(r.forward_ms / 1e3);
      bwd.push_back(r.backward_ms / 1e3);
      opt.push_back(r.optimizer_ms / 1e3);
      total.push_back(r.step_ms / 1e3);
    }
  }
  if (profiler && run.rank0()) fs::write_file_atomically(args.get("profile", ""), to_json(profiler->finish(steps)));
  // under torchrun every rank's peak, printed by rank 0
  const std::vector<double> rank_peaks = run.from_every_rank(static_cast<double>(peak_memory_bytes(run.device())));
  const std::vector<double> rank_starts = run.from_every_rank(start_bytes);
  if (!run.rank0()) return 0;
  const int64_t peak_bytes = static_cast<int64_t>(*std::max_element(rank_peaks.begin(), rank_peaks.end()));
  auto listed = [](const std::vector<double>& v) {
    std::string s;
    for (double b : v) s += (s.empty() ? "" : ", ") + fmt::format("{:.0f}", b);
    return s;
  };
  const std::string memory_kind =
      cuda ? "peak GPU memory allocated during the steps" : "max RSS of the process during the steps";
  std::string device_name;
  const double peak = peak_tflops(run.device(), cfg.precision, cfg.peak_tflops, &device_name);
  const double flops_per_token = training_flops_per_token(run.model()->shape);
  const double step_s = median(total);
  const double tokens_per_s = cfg.samples_per_step() * cfg.devices * cfg.ctx_len / step_s;  // all processes
  int64_t trained = 0, parameters = 0;  // fine-tuning trains a part (train_type, peft)
  for (const auto& p : run.model()->parameters()) {
    parameters += p.numel();
    if (p.requires_grad()) trained += p.numel();
  }
  const std::string mfu = peak > 0 ? fmt::format("{:.4f}", flops_per_token * tokens_per_s / (peak * 1e12 * cfg.devices)) : "null";
  const std::string json = fmt::format(
      "{{\"impl\": \"rwkv7-cpp\", \"device\": \"{}\", \"backend\": \"{}\", \"threads\": {}, "
      "\"n_layer\": {}, \"n_embd\": {}, \"head_size\": {}, "
      "\"vocab\": {}, \"ctx\": {}, \"bsz\": {}, \"accumulate_grad_batches\": {}, \"precision\": \"{}\", \"grad_cp\": {}, \"fused_ops\": {}, "
      "\"head_chunk\": {}, \"chunk_ctx\": {}, \"bptt\": {}, \"doc_reset\": {}, \"train_type\": \"{}\", \"peft\": \"{}\", \"parameters\": {}, "
      "\"trained_parameters\": {}, \"steps\": {}, "
      "\"step_ms_median\": {:.2f}, \"forward_ms\": {:.2f}, \"backward_ms\": {:.2f}, \"optimizer_ms\": {:.2f}, "
      "\"tokens_per_s\": {:.0f}, \"flops_per_token\": {:.4g}, \"peak_tflops\": {}, \"mfu\": {}, "
      "\"processes\": {}, \"zero_stage\": {}, \"rank_start_mem_bytes\": [{}], \"rank_peak_mem_bytes\": [{}], "
      "\"peak_mem_bytes\": {}, \"peak_mem_gib\": {:.3f}, \"memory\": \"{}\", \"profiled\": {}, "
      "\"cpu_cache\": {}, \"last_loss\": {:.4f}}}\n",
      json_escape(device_name), cuda ? "cuda" : "cpu", at::get_num_threads(), cfg.n_layer, cfg.n_embd,
      run.model()->shape.head_size, cfg.vocab_size, cfg.ctx_len, cfg.micro_bsz, cfg.accumulate_grad_batches, name_of(cfg.precision), cfg.grad_cp,
      cfg.fused_ops, cfg.head_chunk, cfg.chunk_ctx,
      cfg.chunk_ctx > 0 ? "\"" + std::string(name_of(cfg.bptt)) + "\"" : std::string("null"),  // forward_ms 0 then: it is in backward_ms
      cfg.doc_reset,
      name_of(cfg.train_type), name_of(cfg.peft), parameters, trained, steps, step_s * 1e3, median(fwd) * 1e3, median(bwd) * 1e3, median(opt) * 1e3,
      tokens_per_s, flops_per_token, peak, mfu, cfg.devices, cfg.zero_stage, listed(rank_starts), listed(rank_peaks), peak_bytes, peak_bytes / double(1 << 30), memory_kind,
      profiler ? "true" : "false", cuda ? 0 : cfg.cpu_cache, last_loss);
  std::fputs(json.c_str(), stdout);
  if (args.has("out")) fs::write_file_atomically(args.get("out", ""), json);
  return 0;
}

}  // namespace rwkv7::cmd
