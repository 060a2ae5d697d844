#include "rwkv7/train/metrics.h"

#include <fmt/format.h>
#include <stdio_ext.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "rwkv7/io/json.h"
#include "rwkv7/util/clock.h"

namespace rwkv7 {

namespace {
std::FILE* open_append(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (!f) throw std::runtime_error(path + ": cannot open for writing");
  return f;
}

// Appends `s` and syncs it. A failed write (a full disk) is cut back off the file, so no line is
// ever left half-written, and throws: a run does not go on unlogged.
void write_synced(std::FILE* f, const std::string& name, const std::string& s) {
  struct stat st {};
  const bool sized = ::fstat(fileno(f), &st) == 0;
  errno = 0;
  const bool ok = std::fputs(s.c_str(), f) >= 0 && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  if (ok) return;
  const int err = errno ? errno : EIO;
  __fpurge(f);  // drop what stdio still holds, or fclose would write the partial line again
  std::clearerr(f);
  if (sized && ::ftruncate(fileno(f), st.st_size) == 0) std::fseek(f, 0, SEEK_END);
  throw std::runtime_error(fmt::format("{}: write failed ({}); the run stops here, its last checkpoint is kept",
                                       name, std::strerror(err)));
}

// 17 significant digits: a double read back is the same double
std::string json_number(double x) { return std::isfinite(x) ? fmt::format("{:.17g}", x) : "null"; }
}  // namespace

std::string python_datetime_now() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  std::tm local{};
  localtime_r(&tv.tv_sec, &local);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &local);
  return fmt::format("{}.{:06d}", buf, static_cast<int>(tv.tv_usec));
}

RunLog::RunLog(const std::string& proj_dir)
    : log_path_(proj_dir + "/train_log.txt"),
      metrics_path_(proj_dir + "/metrics.jsonl"),
      log_(open_append(log_path_)),
      metrics_(open_append(metrics_path_)) {}

RunLog::~RunLog() {
  if (log_) std::fclose(log_);
  if (metrics_) std::fclose(metrics_);
}

void RunLog::new_run(const std::string& settings) {
  char stamp[32];
  std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d-%H-%M-%S", &local);
  write_synced(log_, log_path_, fmt::format("NEW RUN {}\n{}", stamp, settings));
}

void RunLog::step(const StepMetrics& m) {
  write_synced(metrics_, metrics_path_,
               fmt::format("{{\"step\": {}, \"epoch\": {}, \"loss\": {}, \"lr\": {}, \"grad_norm\": {}, "
                           "\"tokens\": {}, \"tokens_per_s\": {}, \"step_ms\": {}, \"skipped\": {}}}\n",
                           m.step, m.epoch, json_number(m.loss), json_number(m.lr),
                           json_number(m.grad_norm), m.tokens, json_number(m.tokens_per_s),
                           json_number(m.step_ms), m.skipped ? "true" : "false"));
}

void RunLog::epoch(int64_t epoch, double mean_loss, double lr, int64_t epoch_in_run) {
  write_synced(log_, log_path_, fmt::format("{} {:.6f} {:.4f} {:.8f} {} {}\n", epoch, mean_loss,
                                 std::exp(mean_loss), lr, python_datetime_now(), epoch_in_run));
}

void RunLog::validation(int64_t step, int64_t epoch, double val_loss) {
  write_synced(metrics_, metrics_path_, fmt::format("{{\"val_step\": {}, \"epoch\": {}, \"val_loss\": {}}}\n", step,
                                     epoch, json_number(val_loss)));
  write_synced(log_, log_path_, fmt::format("validation step {} epoch {} loss {:.6f}\n", step, epoch, val_loss));
}

void RunLog::event(const std::string& kind, const std::string& detail) {
  write_synced(metrics_, metrics_path_,
               fmt::format("{{\"event\": \"{}\", \"detail\": \"{}\"}}\n", json_escape(kind), json_escape(detail)));
  write_synced(log_, log_path_, fmt::format("{}: {}\n", kind, detail));
}

Progress::Progress(int64_t total_steps, int64_t every)
    : tty_(::isatty(fileno(stdout))), total_(total_steps), every_(std::max<int64_t>(1, every)),
      started_(now_seconds()) {}

void Progress::update(const StepMetrics& m, int64_t done) {
  if (total_ < 0) return;  // not this rank's to show
  // the time per step of this process's steps: a resumed run's earlier steps took none of `elapsed`
  if (first_done_ < 0) first_done_ = done - 1;
  const double elapsed = now_seconds() - started_;
  const int64_t done_here = done - first_done_;
  const double left = done_here > 0 && total_ > 0 ? elapsed / done_here * std::max<int64_t>(0, total_ - m.step - 1) : 0;
  const int h = static_cast<int>(left / 3600), mi = static_cast<int>(std::fmod(left, 3600) / 60),
            se = static_cast<int>(std::fmod(left, 60));
  const std::string text = fmt::format(
      "epoch {} step {} loss {:.4f} lr {:.3e} {:.1f} kt/s{} mem {:.2f} GiB left {:02d}:{:02d}:{:02d}{}", m.epoch,
      m.step, m.loss, m.lr, m.tokens_per_s / 1000, m.mfu > 0 ? fmt::format(" MFU {:.1f}%", 100 * m.mfu) : "",
      m.peak_mem_gib, h, mi, se, m.skipped ? " (skipped)" : "");
  if (tty_) {
    const int width = 24;
    const int filled = total_ > 0 ? static_cast<int>(width * std::min(1.0, double(m.step + 1) / total_)) : 0;
    std::printf("\r[%s%s] %s\033[K", std::string(filled, '#').c_str(),
                std::string(width - filled, '.').c_str(), text.c_str());
    std::fflush(stdout);
  } else if (done % every_ == 0) {
    std::printf("%s\n", text.c_str());
    std::fflush(stdout);
  }
}

void Progress::finish_line() {
  if (tty_ && total_ >= 0) std::printf("\n");
}

}  // namespace rwkv7
