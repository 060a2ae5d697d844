// What a run reports: train_log.txt in the seed's format, metrics.jsonl (one JSON line per
// optimizer step), and progress on the console (a bar on a terminal, plain lines otherwise).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace rwkv7 {

struct StepMetrics {
  int64_t step = 0;        // real step: global_step + epoch_begin * epoch_steps
  int64_t epoch = 0;       // mini-epoch (epoch_begin + epoch of this run)
  double loss = 0;         // mean cross-entropy over the global batch
  double lr = 0;
  double grad_norm = 0;    // before clipping
  int64_t tokens = 0;      // tokens trained so far, counting from epoch 0
  double tokens_per_s = 0;
  double step_ms = 0;
  bool skipped = false;        // not applied: loss or gradient not finite
  double mfu = 0;      // model FLOPs utilisation, 0..1; 0: unknown peak (not shown)
  double peak_mem_gib = 0;
};

// "2025-04-24 02:23:42.481256": Python's str(datetime.now())
std::string python_datetime_now();

// Appends to proj_dir/train_log.txt and proj_dir/metrics.jsonl; each write is flushed and
// synced, so a killed run loses at most the line being written. A failed write (a full disk)
// is cut back off the file and throws std::runtime_error naming it.
class RunLog {
 public:
  explicit RunLog(const std::string& proj_dir);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;

  void new_run(const std::string& settings);
  void step(const StepMetrics& m);
  // `epoch mean_loss exp(mean_loss) lr datetime epoch_in_this_run` (6, 4 and 8 decimals)
  void epoch(int64_t epoch, double mean_loss, double lr, int64_t epoch_in_run);
  // {"val_step": step, "epoch": e, "val_loss": x} and a train_log.txt line
  void validation(int64_t step, int64_t epoch, double val_loss);
  // free-form lines (metrics.jsonl gets {"event": ...})
  void event(const std::string& kind, const std::string& detail);

 private:
  std::string log_path_, metrics_path_;
  std::FILE* log_ = nullptr;
  std::FILE* metrics_ = nullptr;
};

// One line of progress per step on a terminal (redrawn), every `every` steps otherwise.
class Progress {
 public:
  Progress(int64_t total_steps, int64_t every);
  void update(const StepMetrics& m, int64_t steps_done_in_run);
  void finish_line();

 private:
  bool tty_;
  int64_t total_, every_;
  double started_ = 0;
  int64_t first_done_ = -1;  // steps_done_in_run at this process's first update (a resume starts late)
};

}  // namespace rwkv7
