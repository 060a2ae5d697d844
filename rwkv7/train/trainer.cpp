#include "rwkv7/train/trainer.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "rwkv7/train/flops.h"
#include "rwkv7/train/metrics.h"
#include "rwkv7/train/schedule.h"
#include "rwkv7/util/clock.h"

namespace rwkv7 {

namespace {

// SIGINT / SIGTERM / SIGHUP (a dropped SSH session) ask the loop to save and stop after the step
// in flight; a second one ends the process at once.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal) std::_Exit(128 + sig);
  g_stop_signal = sig;
}

struct SignalScope {
  static constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction old[3] {};
  SignalScope() {
    g_stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &old[i]);
  }
  ~SignalScope() {
    for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &old[i], nullptr);
  }
};

const char* signal_name(int sig) {
  return sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : sig == SIGINT ? "SIGINT" : "stop signals";
}

// The run log on rank 0; nothing elsewhere.
struct NullableLog {
  std::unique_ptr<RunLog> log;
  void new_run(const std::string& s) { if (log) log->new_run(s); }
  void step(const StepMetrics& m) { if (log) log->step(m); }
  void epoch(int64_t e, double l, double lr, int64_t r) { if (log) log->epoch(e, l, lr, r); }
  void validation(int64_t s, int64_t e, double v) { if (log) log->validation(s, e, v); }
  void event(const std::string& k, const std::string& d) { if (log) log->event(k, d); }
};

// The loop's state between steps: what it logs and when it stops.
struct Loop {
  Run& run;
  NullableLog log;
  Progress progress;
  ScheduleParams schedule;
  int64_t tokens_per_step;
  RunSummary summary;
  double lr = 0;
  int64_t bad_in_a_row = 0;
  double mfu_per_token_per_s = 0;  // training FLOPs per token / the processes' peak FLOP/s (0: unknown)
};

// A step whose loss or gradient was not finite was skipped; too many in a row end the run.
void count_bad_step(Loop& L, const StepResult& r, int64_t real_step) {
  L.bad_in_a_row = r.skipped ? L.bad_in_a_row + 1 : 0;
  if (!r.skipped) return;
  L.progress.finish_line();
  if (L.run.rank0())
    std::fprintf(stderr, "warning: step %lld: loss %g, gradient norm %g: update skipped (%lld in a row)\n",
                 static_cast<long long>(real_step), r.loss, r.grad_norm, static_cast<long long>(L.bad_in_a_row));
  if (L.bad_in_a_row < L.run.config().max_bad_steps) return;
  L.log.event("stopped", fmt::format("{} steps in a row with a non-finite loss or gradient", L.bad_in_a_row));
  throw std::runtime_error(fmt::format(
      "{} steps in a row had a non-finite loss or gradient (max_bad_steps); stopped without "
      "saving; the checkpoints in {} are untouched", L.bad_in_a_row, L.run.config().proj_dir));
}

// SIGINT / SIGTERM: a resumable checkpoint of the mini-epoch so far, then a clean stop. `sig`: the
// signal, whichever rank got it.
void save_and_stop(Loop& L, int64_t epoch, int sig) {
  Run& run = L.run;
  const std::string path = run.dir().epoch_checkpoint(epoch);
  run.save(path, /*with_state=*/true);
  L.progress.finish_line();
  const char* name = signal_name(sig);
  L.log.event("interrupted", fmt::format("{}: saved {} and its training state (resume with train_stage 3)", name, path));
  if (run.rank0()) std::printf("%s: saved %s; resume with train_stage: 3\n", name, path.c_str());
  L.summary.stop_reason = std::string("interrupted by ") + name;
}

// The held-out loss, into the logs and onto the console.
void validate(Loop& L, int64_t step, int64_t epoch) {
  const double loss = L.run.validate();
  L.log.validation(step, epoch, loss);
  if (!L.run.rank0()) return;
  L.progress.finish_line();
  std::printf("validation loss %.4f after step %lld (mini-epoch %lld)\n", loss, static_cast<long long>(step),
              static_cast<long long>(epoch));
  std::fflush(stdout);
}

// The steps of one mini-epoch, from the run's position onwards. Returns false when the run is over.
bool run_epoch_steps(Loop& L, int64_t epoch) {
  Run& run = L.run;
  const TrainConfig& cfg = run.config();
  const RunPosition& pos = run.position();
  const int64_t epoch_steps = cfg.steps_per_epoch();
  for (; pos.step_in_epoch < epoch_steps; run.next_step()) {
    const int64_t global_step = pos.epoch_in_run * epoch_steps + pos.step_in_epoch;
    const int64_t real_step = global_step + pos.epoch_begin * epoch_steps;
    // schedule
    const ScheduleAt at_step =
        run.config().lr_schedule == LrSchedule::cos
            ? cos_schedule(run.config().lr_init, run.config().lr_final, real_step, run.config().steps_per_epoch() * run.config().epoch_count)
            : lr_schedule(L.schedule, global_step);
    if (at_step.finished && run.config().counts_epochs()) {  // epoch_count mini-epochs done (each saved at its end)
      L.progress.finish_line();
      L.log.event("finished", fmt::format("{} mini-epochs done", run.config().epoch_count));
      L.summary.stop_reason = "epoch_count";
      return false;
    }
    if (at_step.finished) {
      run.save(run.dir().final_checkpoint(), false);
      L.progress.finish_line();
      L.log.event("finished", "token budget reached; saved " + run.dir().final_checkpoint());
      L.summary.stop_reason = "token budget";
      return false;
    }
    L.lr = at_step.lr;
    // batch, forward, loss, backward, clip, step
    const double t0 = now_seconds();
    const StepResult r = run.step(run.batch(epoch, pos.step_in_epoch), L.lr, static_cast<int>(g_stop_signal));
    const double dt = now_seconds() - t0;
    // log
    if (!r.skipped) run.add_epoch_loss(r.loss);
    StepMetrics m;
    m.step = real_step;
    m.epoch = epoch;
    m.loss = r.loss;
    m.lr = L.lr;
    m.grad_norm = r.grad_norm;
    m.tokens = (real_step + 1) * L.tokens_per_step;
    m.tokens_per_s = L.tokens_per_step / dt;
    m.step_ms = dt * 1e3;
    m.skipped = r.skipped;
    m.mfu = L.mfu_per_token_per_s * L.tokens_per_step / dt;
    m.peak_mem_gib = peak_memory_gib(run.device());
    L.log.step(m);
    L.progress.update(m, global_step + 1);
    ++L.summary.steps;
    L.summary.last_loss = r.loss;
    count_bad_step(L, r, real_step);
    // save: the seed also writes rwkv-final.pth after the step that ends one pass of the data
    if (!run.config().counts_epochs() && real_step == run.config().magic_prime / run.config().real_bsz() - 1)
      run.save(run.dir().final_checkpoint(), false);
    if (run.validates() && run.config().val_every > 0 && (global_step + 1) % run.config().val_every == 0)
      validate(L, real_step, epoch);
    if (r.stop) {
      run.next_step();
      save_and_stop(L, epoch, r.stop_signal);
      return false;
    }
  }
  return true;
}

// End of a mini-epoch: the seed's save and train_log line; validation; the next position.
void end_epoch(Loop& L, int64_t epoch) {
  Run& run = L.run;
  const RunPosition done = run.position();
  const double mean_loss = done.epoch_loss_count ? done.epoch_loss_sum / done.epoch_loss_count : NAN;
  // the last mini-epoch is always saved: the seed counts it within this run, a run counted in
  // mini-epochs (RWKV-PEFT) from the first
  const bool last = run.config().counts_epochs() ? epoch == run.config().epoch_count - 1
                                            : done.epoch_in_run == run.config().magic_prime / run.config().epoch_samples - 1;
  run.next_epoch();
  if ((run.config().epoch_save > 0 && done.epoch_in_run % run.config().epoch_save == 0) || last)
    run.save(run.dir().epoch_checkpoint(epoch), true);
  L.log.epoch(epoch, mean_loss, L.lr, done.epoch_in_run);
  if (run.validates() && run.config().val_every == 0)
    validate(L, done.epoch_begin * done.epoch_steps + (done.epoch_in_run + 1) * done.epoch_steps - 1, epoch);
  L.summary.last_epoch = epoch;
}

}  // namespace

RunSummary train(const TrainConfig& config) {
  Run run(config);
  const TrainConfig& cfg = run.config();
  const int64_t tokens_per_step = cfg.ctx_len * cfg.real_bsz();
  Loop L{run,
         NullableLog{run.rank0() ? std::make_unique<RunLog>(cfg.proj_dir) : nullptr},
         Progress(!run.rank0()           ? -1
                  : cfg.counts_epochs() ? cfg.steps_per_epoch() * cfg.epoch_count
                                        : cfg.my_exit_tokens / tokens_per_step,
                  10),
         ScheduleParams{cfg.lr_init, cfg.lr_final, run.position().warmup_steps, cfg.ctx_len, cfg.real_bsz(),
                        cfg.steps_per_epoch(), run.position().epoch_begin, cfg.my_exit_tokens},
         tokens_per_step, {}};
  std::string device_name;
  const double peak = peak_tflops(run.device(), cfg.precision, cfg.peak_tflops, &device_name) * 1e12 * cfg.devices;
  if (peak > 0) L.mfu_per_token_per_s = training_flops_per_token(run.model()->shape) / peak;
  L.log.new_run(describe(cfg) + "start: " + run.start().note + "\n");
  SignalScope signals;
  for (int64_t epochs_this_call = 1;; ++epochs_this_call) {
    const int64_t epoch = run.position().epoch_begin + run.position().epoch_in_run;
    run.seed_randomness(epoch);
    if (!run_epoch_steps(L, epoch)) return L.summary;
    end_epoch(L, epoch);
    if (cfg.epoch_limit > 0 && epochs_this_call >= cfg.epoch_limit) {
      L.progress.finish_line();
      L.summary.stop_reason = "epoch_limit";
      return L.summary;
    }
  }
}

}  // namespace rwkv7
