// rwkv7 bench --config F.yaml [--steps N] [--warmup W] [--out F.json] [key=value ...]
// Times training steps of the config's model on random tokens (no data needed): tokens/s, the
// step split into forward, backward and optimizer, and peak memory. One JSON object out.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#ifdef RWKV7_HAS_CUDA_OP
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "cli.h"
#include "commands.h"
#include "rwkv7/config.h"
#include "rwkv7/init.h"
#include "rwkv7/loss.h"
#include "rwkv7/model.h"
#include "rwkv7/optim.h"

namespace rwkv7::cmd {

namespace {

double seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

void sync(const at::Device& d) {
#ifdef RWKV7_HAS_CUDA_OP
  if (d.is_cuda()) c10::cuda::device_synchronize();
#else
  (void)d;
#endif
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int bench(int argc, char** argv) {
  const cli::Args args = cli::parse(argc, argv, {"config", "steps", "warmup", "out"});
  if (args.help) {
    std::printf("usage: rwkv7 bench --config F.yaml [--steps 20] [--warmup 3] [--out F.json] [key=value ...]\n"
                "  times training steps (forward, backward, optimizer) of the config's model on random\n"
                "  tokens; reports tokens/s and peak memory as JSON\n");
    return 0;
  }
  const TrainConfig cfg = load_train_config(args.require("config"), args.positional);
  const int64_t steps = cli::parse_int_list("steps", args.get("steps", "20")).at(0);
  const int64_t warmup = cli::parse_int_list("warmup", args.get("warmup", "3")).at(0);
  if (steps < 1 || warmup < 0) throw cli::UsageError("--steps must be >= 1 and --warmup >= 0");
  if (cfg.threads > 0) at::set_num_threads(static_cast<int>(cfg.threads));
  const bool cuda = cfg.device == "cuda" || (cfg.device == "auto" && at::globalContext().hasCUDA());
  const at::Device device = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);

  RWKV model(seed_shape(cfg.n_layer, cfg.n_embd, cfg.vocab_size, cfg.head_size));
  init_seed_weights(model, 0);
  model->to(device, cfg.precision == "bf16" ? at::kBFloat16 : at::kFloat);
  model->gradient_checkpointing = cfg.grad_cp == 1;
  model->train();
  SeedOptimizer optimizer(model, {cfg.lr_init, cfg.beta1, cfg.beta2, cfg.adam_eps, cfg.weight_decay});
  at::manual_seed(0);

  std::vector<double> fwd, bwd, opt, total;
  double last_loss = 0;
  for (int64_t i = 0; i < warmup + steps; ++i) {
    const at::Tensor tokens = at::randint(0, cfg.vocab_size, {cfg.micro_bsz, cfg.ctx_len + 1}, at::kLong).to(device);
    sync(device);
    const double t0 = seconds();
    const at::Tensor loss = cross_entropy_l2wrap(model->forward(tokens.slice(1, 0, cfg.ctx_len)),
                                                 tokens.slice(1, 1, cfg.ctx_len + 1));
    sync(device);
    const double t1 = seconds();
    loss.backward();
    sync(device);
    const double t2 = seconds();
    optimizer.set_lr(cfg.lr_init);
    optimizer.clip_gradients(cfg.grad_clip);
    optimizer.step();
    optimizer.zero_grad();
    last_loss = loss.item<double>();
    const double t3 = seconds();
    if (i >= warmup) {
      fwd.push_back(t1 - t0);
      bwd.push_back(t2 - t1);
      opt.push_back(t3 - t2);
      total.push_back(t3 - t0);
    }
  }
  double peak_gib = 0;
  std::string memory_kind = "max RSS of the process";
#ifdef RWKV7_HAS_CUDA_OP
  if (cuda) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
    peak_gib = stats.allocated_bytes[0].peak / double(1 << 30);
    memory_kind = "peak GPU memory allocated";
  }
#endif
  if (!cuda) {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    peak_gib = ru.ru_maxrss / double(1 << 20);
  }
  const double step_s = median(total);
  const std::string json = fmt::format(
      "{{\"impl\": \"rwkv7-cpp\", \"device\": \"{}\", \"threads\": {}, \"n_layer\": {}, \"n_embd\": {}, "
      "\"vocab\": {}, \"ctx\": {}, \"bsz\": {}, \"precision\": \"{}\", \"grad_cp\": {}, \"steps\": {}, "
      "\"step_ms_median\": {:.2f}, \"forward_ms\": {:.2f}, \"backward_ms\": {:.2f}, \"optimizer_ms\": {:.2f}, "
      "\"tokens_per_s\": {:.0f}, \"peak_mem_gib\": {:.3f}, \"memory\": \"{}\", \"last_loss\": {:.4f}}}\n",
      cuda ? "cuda" : "cpu", at::get_num_threads(), cfg.n_layer, cfg.n_embd, cfg.vocab_size, cfg.ctx_len,
      cfg.micro_bsz, cfg.precision, cfg.grad_cp, steps, step_s * 1e3, median(fwd) * 1e3, median(bwd) * 1e3,
      median(opt) * 1e3, cfg.micro_bsz * cfg.ctx_len / step_s, peak_gib, memory_kind, last_loss);
  std::fputs(json.c_str(), stdout);
  if (args.has("out")) std::ofstream(args.get("out", "")) << json;
  return 0;
}

}  // namespace rwkv7::cmd
