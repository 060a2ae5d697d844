#include "rwkv7/train/profile.h"

#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <map>
#include <set>

#include "rwkv7/io/json.h"

namespace rwkv7 {

namespace kineto = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

namespace {

std::set<ActivityType> activities(bool cuda) {
  if (cuda) return {ActivityType::CPU, ActivityType::CUDA};
  return {ActivityType::CPU};
}

struct Total {
  double ns = 0;
  int64_t calls = 0;
};

// GPU: every event the device ran (kernels, copies, sets), by its duration there.
std::map<std::string, Total> device_times(const std::vector<kineto::KinetoEvent>& events) {
  std::map<std::string, Total> by_name;
  for (const auto& e : events) {
    if (e.deviceType() != c10::DeviceType::CUDA) continue;
    Total& t = by_name[e.name()];
    t.ns += double(e.durationNs());
    t.calls += 1;
  }
  return by_name;
}

// CPU: self time. Per thread, events sorted by start (outer before inner on ties) nest; an
// event's self time is its duration less its direct children's durations.
std::map<std::string, Total> cpu_self_times(const std::vector<kineto::KinetoEvent>& events) {
  std::map<uint64_t, std::vector<const kineto::KinetoEvent*>> by_thread;
  for (const auto& e : events)
    if (e.deviceType() == c10::DeviceType::CPU && !e.isAsync()) by_thread[e.startThreadId()].push_back(&e);
  std::map<std::string, Total> by_name;
  for (auto& [thread, list] : by_thread) {
    std::sort(list.begin(), list.end(), [](const auto* a, const auto* b) {
      return a->startNs() != b->startNs() ? a->startNs() < b->startNs() : a->endNs() > b->endNs();
    });
    std::vector<std::pair<const kineto::KinetoEvent*, double>> open;  // event, its self time so far
    auto close = [&] {
      Total& t = by_name[open.back().first->name()];
      t.ns += std::max(0.0, open.back().second);
      t.calls += 1;
      open.pop_back();
    };
    for (const auto* e : list) {
      while (!open.empty() && open.back().first->endNs() <= e->startNs()) close();
      if (!open.empty()) open.back().second -= double(e->durationNs());  // e is a child of the top
      open.emplace_back(e, double(e->durationNs()));
    }
    while (!open.empty()) close();
  }
  return by_name;
}

}  // namespace

StepProfiler::StepProfiler(bool cuda) : cuda_(cuda) {
  const ProfilerConfig config(ProfilerState::KINETO);
  kineto::prepareProfiler(config, activities(cuda_));
  kineto::enableProfiler(config, activities(cuda_));
}

StepProfiler::~StepProfiler() {
  if (running_) kineto::disableProfiler();
}

StepProfile StepProfiler::finish(int64_t steps, size_t top) {
  running_ = false;
  const std::unique_ptr<kineto::ProfilerResult> result = kineto::disableProfiler();
  std::map<std::string, Total> by_name = device_times(result->events());
  StepProfile p;
  p.clock = "gpu";
  if (!cuda_ || by_name.empty()) {
    p.clock = "cpu_self";
    by_name = cpu_self_times(result->events());
  }
  p.steps = std::max<int64_t>(steps, 1);
  double total_ns = 0;
  for (const auto& [name, t] : by_name) total_ns += t.ns;
  p.ms_per_step = total_ns / 1e6 / double(p.steps);
  for (const auto& [name, t] : by_name)
    p.top.push_back({name, t.ns / 1e6 / double(p.steps), total_ns > 0 ? t.ns / total_ns : 0,
                     double(t.calls) / double(p.steps)});
  std::sort(p.top.begin(), p.top.end(), [](const auto& a, const auto& b) { return a.ms_per_step > b.ms_per_step; });
  if (p.top.size() > top) p.top.resize(top);
  return p;
}

std::string to_json(const StepProfile& p) {
  std::string rows;
  for (const auto& k : p.top)
    rows += fmt::format("{}\n  {{\"name\": \"{}\", \"ms_per_step\": {:.4f}, \"share\": {:.4f}, \"calls_per_step\": {:.2f}}}",
                        rows.empty() ? "" : ",", json_escape(k.name), k.ms_per_step, k.share, k.calls_per_step);
  return fmt::format("{{\"clock\": \"{}\", \"steps\": {}, \"ms_per_step\": {:.4f}, \"kernels\": [{}\n]}}\n", p.clock,
                     p.steps, p.ms_per_step, rows);
}

}  // namespace rwkv7
