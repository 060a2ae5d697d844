#include "rwkv7/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "rwkv7/checkpoint.h"
#include "rwkv7/data.h"
#include "rwkv7/distributed.h"
#include "rwkv7/fs.h"
#include "rwkv7/init.h"
#include "rwkv7/loss.h"
#include "rwkv7/metrics.h"
#include "rwkv7/model.h"
#include "rwkv7/optim.h"
#include "rwkv7/schedule.h"
#include "rwkv7/train_state.h"

namespace rwkv7 {

namespace {

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

// cuda:LOCAL_RANK (one GPU per process) or the CPU
at::Device pick_device(const TrainConfig& cfg, int64_t local_rank) {
  const bool have_cuda = at::globalContext().hasCUDA();
  if (cfg.device == "cuda" && !have_cuda)
    throw ConfigError("key 'device': cuda was asked for, but no CUDA device is available");
  return (cfg.device == "cuda" || (cfg.device == "auto" && have_cuda))
             ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank))
             : at::Device(at::kCPU);
}

ModelShape shape_of(const TrainConfig& cfg) {
  ModelShape s = seed_shape(cfg.n_layer, cfg.n_embd, cfg.vocab_size, cfg.head_size);
  if (cfg.d_decay_lora) s.d_decay = cfg.d_decay_lora;
  if (cfg.d_aaa_lora) s.d_aaa = cfg.d_aaa_lora;
  if (cfg.d_mv_lora) s.d_mv = cfg.d_mv_lora;
  if (cfg.d_gate_lora) s.d_gate = cfg.d_gate_lora;
  return s;
}

// The model a checkpoint holds, checked against the config's sizes; its LoRA and FFN widths
// (released models differ from the seed's formula) are taken as they are.
ModelShape shape_for_checkpoint(const TrainConfig& cfg, const StateDict& dict, const std::string& path) {
  const ModelShape want = shape_of(cfg), got = shape_from_state_dict(dict, path);
  if (got.n_layer != want.n_layer || got.n_embd != want.n_embd || got.vocab_size != want.vocab_size ||
      got.head_size != want.head_size)
    throw CheckpointError(fmt::format(
        "{} does not fit the model: it is L{} D{} V{} head {}, the config says L{} D{} V{} head {}", path,
        got.n_layer, got.n_embd, got.vocab_size, got.head_size, want.n_layer, want.n_embd, want.vocab_size,
        want.head_size));
  return got;
}

// proj_dir must exist and take files.
void ensure_writable(const std::string& dir) {
  try {
    fs::create_directories(dir);
  } catch (const std::exception&) {
    throw ConfigError("key 'proj_dir': cannot create '" + dir + "'");
  }
  const std::string probe = dir + "/.write-test";
  std::FILE* f = std::fopen(probe.c_str(), "w");
  if (!f) throw ConfigError("key 'proj_dir': '" + dir + "' is not writable");
  std::fclose(f);
  std::remove(probe.c_str());
}

// The data, checked against the config: magic_prime fits, every token id < vocab_size.
void check_data(const BinIdx& data, const TrainConfig& cfg) {
  const std::string why = check_magic_prime(cfg.magic_prime, data.num_tokens(), cfg.ctx_len);
  if (!why.empty()) throw ConfigError("key 'magic_prime': " + why);
  const int64_t top = data.max_token();
  if (top >= cfg.vocab_size)
    throw ConfigError(fmt::format("key 'vocab_size': {} has token id {} >= vocab_size {}",
                                  cfg.data_file, top, cfg.vocab_size));
}

// x, y: [micro_bsz, ctx_len] for step `step_in_epoch` of mini-epoch `epoch` on this rank.
std::pair<at::Tensor, at::Tensor> make_batch(const BinIdx& data, const TrainConfig& cfg,
                                             int64_t epoch, int64_t step_in_epoch, int64_t rank) {
  at::Tensor batch = at::empty({cfg.micro_bsz, cfg.ctx_len + 1}, at::kLong);
  for (int64_t j = 0; j < cfg.micro_bsz; ++j) {
    const uint64_t idx = step_in_epoch * cfg.micro_bsz + j;
    const uint64_t offset = sample_offset(cfg.magic_prime, cfg.ctx_len, cfg.epoch_samples, epoch,
                                          idx, rank, cfg.devices);
    data.read(offset, cfg.ctx_len + 1, batch[j].data_ptr<int64_t>());
  }
  return {batch.slice(1, 0, cfg.ctx_len), batch.slice(1, 1, cfg.ctx_len + 1)};
}

void save_weights(RWKV& model, const std::string& path) { write_pth(path, model->state_dict()); }

// A fixed held-out set: `count` windows of ctx_len + 1 tokens spread evenly over the data.
at::Tensor validation_windows(const BinIdx& data, int64_t ctx_len, int64_t count) {
  if (data.num_tokens() < static_cast<uint64_t>(ctx_len + 1))
    throw ConfigError("key 'val_data_file': fewer tokens than ctx_len + 1");
  at::Tensor w = at::empty({count, ctx_len + 1}, at::kLong);
  const uint64_t span = data.num_tokens() - (ctx_len + 1);
  for (int64_t j = 0; j < count; ++j)
    data.read(span * j / count, ctx_len + 1, w[j].data_ptr<int64_t>());
  return w;
}

// Mean cross-entropy over the held-out windows, in batches of micro_bsz, without gradients.
double validation_loss(RWKV& model, const at::Tensor& windows, int64_t micro_bsz, at::Device device) {
  at::NoGradGuard no_grad;
  double sum = 0;
  for (int64_t i = 0; i < windows.size(0); i += micro_bsz) {
    const at::Tensor w = windows.slice(0, i, std::min(i + micro_bsz, windows.size(0))).to(device);
    const int64_t T = w.size(1) - 1;
    const at::Tensor logits = model->forward(w.slice(1, 0, T));
    sum += at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}).to(at::kFloat),
                                  w.slice(1, 1, T + 1).reshape({-1}), {}, at::Reduction::Sum)
               .item<double>();
  }
  return sum / (windows.size(0) * (windows.size(1) - 1));
}

}  // namespace

StartPoint find_resume_point(const TrainConfig& cfg) {
  std::vector<int64_t> found;  // -1 = rwkv-init.pth
  for (const std::string& name : fs::list_directory(cfg.proj_dir)) {
    if (name.rfind("rwkv-", 0) != 0 || name.size() < 10 || name.substr(name.size() - 4) != ".pth") continue;
    const std::string mid = name.substr(5, name.size() - 9);
    if (mid == "init") {
      found.push_back(-1);
    } else if (!mid.empty() && mid.find_first_not_of("0123456789") == std::string::npos && mid.size() < 12) {
      found.push_back(std::stoll(mid));
    }
  }
  std::sort(found.begin(), found.end());
  if (found.empty())
    throw ConfigError("key 'train_stage': no rwkv-init.pth or rwkv-<n>.pth in " + cfg.proj_dir +
                      " to resume from (run rwkv7 prepare first)");
  auto path_of = [&](int64_t n) {
    return cfg.proj_dir + "/rwkv-" + (n < 0 ? std::string("init") : std::to_string(n)) + ".pth";
  };
  StartPoint sp;
  for (size_t i = found.size(); i-- > 0;) {
    const int64_t n = found[i];
    try {
      sp.weights = read_pth(path_of(n));  // readable? (kept: the run loads it next)
    } catch (const CheckpointError& e) {
      sp.note += fmt::format("skipping unreadable {} ({}); ", path_of(n), e.what());
      continue;
    }
    sp.load_path = path_of(n);
    sp.epoch_begin = n + 1;
    sp.warmup_steps = (n >= 0 && cfg.warmup_steps < 0) ? 10 : cfg.warmup_steps;
    sp.note += "resuming from " + sp.load_path;
    return sp;
  }
  throw CheckpointError("no readable checkpoint in " + cfg.proj_dir + ": " + sp.note);
}

std::string prepare_init(const TrainConfig& cfg) {
  ensure_writable(cfg.proj_dir);
  uint64_t seed = cfg.random_seed >= 0 ? static_cast<uint64_t>(cfg.random_seed)
                                       : static_cast<uint64_t>(std::time(nullptr));
  RWKV model(shape_of(cfg));
  init_seed_weights(model, seed);
  if (cfg.precision == "bf16") model->to(at::kBFloat16);
  const std::string path = cfg.proj_dir + "/rwkv-init.pth";
  save_weights(model, path);
  std::printf("wrote %s (seed %llu, %s)\n", path.c_str(), static_cast<unsigned long long>(seed),
              cfg.precision.c_str());
  return path;
}

namespace {

// SIGINT / SIGTERM ask the loop to save and stop after the step in flight; a second one ends
// the process at once.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal) std::_Exit(128 + sig);
  g_stop_signal = sig;
}

struct SignalScope {
  struct sigaction old_int {}, old_term {};
  SignalScope() {
    g_stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
};

// rwkv-<n>.state.pth -> rwkv-<n>.state.rank<r>-of-<w>.pth (one shard per rank under ZeRO-1)
std::string sharded_state_path(const std::string& state_path, const DistEnv& env) {
  return state_path.substr(0, state_path.size() - 4) + fmt::format(".rank{}-of-{}.pth", env.rank, env.world);
}

// The run log on rank 0; nothing elsewhere.
struct NullableLog {
  RunLog* log;
  void new_run(const std::string& s) { if (log) log->new_run(s); }
  void step(const StepMetrics& m) { if (log) log->step(m); }
  void epoch(int64_t e, double l, double lr, int64_t r) { if (log) log->epoch(e, l, lr, r); }
  void validation(int64_t s, int64_t e, double v) { if (log) log->validation(s, e, v); }
  void event(const std::string& k, const std::string& d) { if (log) log->event(k, d); }
};

bool all_finite(RWKV& model) {
  at::NoGradGuard no_grad;
  for (const auto& p : model->parameters())
    if (!at::isfinite(p).all().item<bool>()) return false;
  return true;
}

}  // namespace

RunSummary train(const TrainConfig& config) {
  // Data parallelism: torchrun-style environment; rank 0 alone writes logs and checkpoints.
  const DistEnv env = dist_env_from_environment();
  TrainConfig cfg = config;
  if (env.enabled()) {
    if (cfg.devices != 1 && cfg.devices != env.world)
      throw ConfigError(fmt::format("key 'devices': {} but WORLD_SIZE is {}", cfg.devices, env.world));
    cfg.devices = env.world;
    cfg.validate();
  }
  const bool rank0 = env.rank == 0;
  if (cfg.threads > 0) at::set_num_threads(static_cast<int>(cfg.threads));
  const at::Device device = pick_device(cfg, env.local_rank);
  ensure_writable(cfg.proj_dir);
  std::unique_ptr<Communicator> comm;
  if (env.enabled())
    comm = std::make_unique<Communicator>(env, std::chrono::seconds(cfg.dist_timeout), device.is_cuda());
  BinIdx data(cfg.data_file);
  check_data(data, cfg);
  at::Tensor val_windows;
  if (!cfg.val_data_file.empty()) {
    BinIdx val(cfg.val_data_file);
    if (val.max_token() >= cfg.vocab_size)
      throw ConfigError("key 'val_data_file': has token ids >= vocab_size");
    val_windows = validation_windows(val, cfg.ctx_len, cfg.val_samples);
  }
  const int64_t epoch_steps = cfg.epoch_steps();

  // --- where to start: fresh, a given checkpoint, or resume (exactly, with a state file) ---
  StartPoint start{cfg.load_model, cfg.epoch_begin, cfg.warmup_steps, ""};
  if (cfg.train_stage >= 2) {
    start = find_resume_point(cfg);
  } else if (start.load_path.empty()) {
    start.load_path = cfg.proj_dir + "/rwkv-init.pth";
    if (rank0) prepare_init(cfg);
    start.note = "fresh init";
  } else {
    start.note = "loading " + start.load_path;
  }
  RunPosition pos{start.epoch_begin, start.warmup_steps, 0, 0, 0.0, 0, epoch_steps};
  StateDict saved_state;
  const std::string state_path = state_path_for(start.load_path);
  if (cfg.train_stage >= 2 && cfg.exact_resume == 1 && fs::is_regular_file(state_path)) {
    try {
      saved_state = read_pth(state_path);
      pos = decode_position(saved_state, state_path);
      if (pos.epoch_steps != epoch_steps)
        throw CheckpointError(state_path + ": made with another epoch_samples / micro_bsz");
      start.note += fmt::format(" with its training state (exact resume at mini-epoch {}, step {})",
                                pos.epoch_begin + pos.epoch_in_run, pos.step_in_epoch);
    } catch (const CheckpointError& e) {
      saved_state.clear();
      pos = RunPosition{start.epoch_begin, start.warmup_steps, 0, 0, 0.0, 0, epoch_steps};
      start.note += fmt::format(" (weights only: {})", e.what());
    }
  }
  if (comm) comm->barrier();  // rank 0's rwkv-init.pth is written
  if (rank0) std::printf("%s\n", start.note.c_str());

  const StateDict start_weights = start.weights.empty() ? read_pth(start.load_path) : std::move(start.weights);
  RWKV model(shape_for_checkpoint(cfg, start_weights, start.load_path));
  model->load_state_dict(start_weights, start.load_path);
  model->to(device, cfg.precision == "bf16" ? at::kBFloat16 : at::kFloat);
  model->gradient_checkpointing = cfg.grad_cp == 1;
  model->train();
  const bool sharded = comm && cfg.zero_stage == 1;
  std::vector<bool> owned;
  if (comm) {
    for (auto& p : model->parameters()) comm->broadcast(p, 0);  // every rank starts from rank 0's
    if (sharded) owned = comm->shard_parameters(model);
    else comm->attach_gradient_buckets(model);
  }
  SeedOptimizer optimizer(model, {cfg.lr_init, cfg.beta1, cfg.beta2, cfg.adam_eps, cfg.weight_decay}, owned);
  if (sharded && !saved_state.empty()) {  // each rank's shard of the state is its own file
    const std::string shard = sharded_state_path(state_path, env);
    saved_state = fs::is_regular_file(shard) ? read_pth(shard) : StateDict{};
    if (saved_state.empty()) throw CheckpointError(shard + ": missing (the run was sharded across " + std::to_string(env.world) + " ranks)");
  }
  if (!saved_state.empty()) optimizer.load_state(saved_state);
  auto master = [&](size_t k) -> at::Tensor& { return optimizer.master(k); };
  std::function<double(double)> global_sum_of_squares;
  if (sharded)
    global_sum_of_squares = [&](double local) {
      at::Tensor t = at::tensor(local, at::kDouble);
      comm->allreduce_sum(t);
      return t.item<double>();
    };

  const int64_t epoch_count = cfg.magic_prime / cfg.epoch_samples;
  const int64_t tokens_per_step = cfg.ctx_len * cfg.real_bsz();
  const ScheduleParams sched{cfg.lr_init, cfg.lr_final, pos.warmup_steps, cfg.ctx_len,
                             cfg.real_bsz(), epoch_steps, pos.epoch_begin, cfg.my_exit_tokens};
  const int64_t rank = env.rank;

  std::unique_ptr<RunLog> log_file = rank0 ? std::make_unique<RunLog>(cfg.proj_dir) : nullptr;
  NullableLog log{log_file.get()};
  log.new_run(describe(cfg) + "start: " + start.note + "\n");
  Progress progress(rank0 ? cfg.my_exit_tokens / tokens_per_step : -1, 10);
  RunSummary summary;
  const std::string final_path = cfg.proj_dir + "/rwkv-final.pth";
  SignalScope signals;
  double lr = 0;
  int64_t bad_in_a_row = 0;

  // Weights, and beside them where the run stands (for an exact resume). Never writes weights
  // that are not finite over a good checkpoint.
  auto save = [&](const std::string& path, bool with_state) {
    if (!all_finite(model))
      throw std::runtime_error("the weights are no longer finite; not saving " + path);
    if (rank0) save_weights(model, path);
    if (with_state && (rank0 || sharded)) {
      StateDict st = encode_position(pos);
      for (auto& kv : optimizer.state()) st.push_back(std::move(kv));
      write_pth(sharded ? sharded_state_path(state_path_for(path), env) : state_path_for(path), st);
    }
  };

  for (int64_t epochs_this_call = 0;; ++epochs_this_call) {
    const int64_t epoch = pos.epoch_begin + pos.epoch_in_run;
    for (; pos.step_in_epoch < epoch_steps; ++pos.step_in_epoch) {
      const double t0 = now_seconds();
      const int64_t s = pos.step_in_epoch;
      const int64_t global_step = pos.epoch_in_run * epoch_steps + s;
      const int64_t real_step = global_step + pos.epoch_begin * epoch_steps;

      // schedule
      const ScheduleAt at_step = lr_schedule(sched, global_step);
      if (at_step.finished) {
        save(final_path, false);
        progress.finish_line();
        log.event("finished", "token budget reached; saved " + final_path);
        summary.stop_reason = "token budget";
        return summary;
      }
      lr = at_step.lr;
      optimizer.set_lr(lr);

      // batch, forward, loss, backward
      auto [x, y] = make_batch(data, cfg, epoch, s, rank);
      const at::Tensor logits = model->forward(x.to(device));
      const at::Tensor loss = cross_entropy_l2wrap(logits, y.to(device));
      loss.backward();
      double loss_value = loss.item<double>();
      bool stop_requested = g_stop_signal != 0;
      if (comm) {  // mean gradient and loss over ranks; any rank's stop request stops them all
        if (sharded) comm->reduce_scatter_gradients(master);
        else comm->finish_gradients();
        at::Tensor shared = at::tensor({loss_value, stop_requested ? 1.0 : 0.0}, at::kDouble);
        comm->allreduce_sum(shared);
        loss_value = shared[0].item<double>() / env.world;
        stop_requested = shared[1].item<double>() > 0;
      }

      // clip, step: a non-finite loss or gradient skips the update
      const double grad_norm = optimizer.clip_gradients(cfg.grad_clip, global_sum_of_squares);
      const bool skipped = !std::isfinite(loss_value) || !std::isfinite(grad_norm);
      if (!skipped) optimizer.step();
      if (!skipped && sharded) comm->allgather_parameters(master);
      optimizer.zero_grad();
      bad_in_a_row = skipped ? bad_in_a_row + 1 : 0;

      // log
      if (!skipped) {
        pos.epoch_loss_sum += loss_value;
        ++pos.epoch_loss_count;
      }
      const double dt = now_seconds() - t0;
      const StepMetrics m{real_step, epoch, loss_value, lr, grad_norm,
                          (real_step + 1) * tokens_per_step, tokens_per_step / dt, dt * 1000, skipped};
      log.step(m);
      progress.update(m, global_step + 1);
      ++summary.steps;
      summary.last_loss = loss_value;
      if (skipped) {
        progress.finish_line();
        if (rank0) std::fprintf(stderr, "warning: step %lld: loss %g, gradient norm %g: update skipped (%lld in a row)\n",
                     static_cast<long long>(real_step), loss_value, grad_norm, static_cast<long long>(bad_in_a_row));
        if (bad_in_a_row >= cfg.max_bad_steps) {
          log.event("stopped", fmt::format("{} steps in a row with a non-finite loss or gradient", bad_in_a_row));
          throw std::runtime_error(fmt::format(
              "{} steps in a row had a non-finite loss or gradient (max_bad_steps); stopped without "
              "saving; the checkpoints in {} are untouched", bad_in_a_row, cfg.proj_dir));
        }
      }

      // save: the seed also writes rwkv-final.pth after the step that ends one pass of the data
      if (real_step == cfg.magic_prime / cfg.real_bsz() - 1) save(final_path, false);
      if (val_windows.defined() && cfg.val_every > 0 && (global_step + 1) % cfg.val_every == 0)
        log.validation(real_step, epoch, validation_loss(model, val_windows, cfg.micro_bsz, device));

      if (stop_requested) {  // SIGINT / SIGTERM: a resumable checkpoint, then a clean stop
        ++pos.step_in_epoch;
        const std::string path = fmt::format("{}/rwkv-{}.pth", cfg.proj_dir, epoch);
        save(path, true);
        progress.finish_line();
        const char* name = g_stop_signal == SIGTERM ? "SIGTERM" : "SIGINT";
        log.event("interrupted", fmt::format("{}: saved {} and its training state (resume with train_stage 3)", name, path));
        if (rank0) std::printf("%s: saved %s; resume with train_stage: 3\n", name, path.c_str());
        summary.stop_reason = std::string("interrupted by ") + name;
        return summary;
      }
    }
    // end of mini-epoch: save, log
    const double mean_loss = pos.epoch_loss_count ? pos.epoch_loss_sum / pos.epoch_loss_count : NAN;
    const int64_t epoch_in_run = pos.epoch_in_run;
    pos = RunPosition{pos.epoch_begin, pos.warmup_steps, epoch_in_run + 1, 0, 0.0, 0, epoch_steps};
    if ((cfg.epoch_save > 0 && epoch_in_run % cfg.epoch_save == 0) || epoch_in_run == epoch_count - 1)
      save(fmt::format("{}/rwkv-{}.pth", cfg.proj_dir, epoch), true);
    log.epoch(epoch, mean_loss, lr, epoch_in_run);
    if (val_windows.defined() && cfg.val_every == 0)
      log.validation(pos.epoch_begin * epoch_steps + (epoch_in_run + 1) * epoch_steps - 1, epoch,
                     validation_loss(model, val_windows, cfg.micro_bsz, device));
    summary.last_epoch = epoch;
    if (cfg.epoch_limit > 0 && epochs_this_call + 1 >= cfg.epoch_limit) {
      progress.finish_line();
      summary.stop_reason = "epoch_limit";
      return summary;
    }
  }
}

}  // namespace rwkv7
