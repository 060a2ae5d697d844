// Where a training step's time goes: PyTorch's profiler (Kineto, its C++ API) around a few steps,
// reduced to the top kernels by time. `rwkv7 bench --profile FILE` writes it; the GPU report's
// "top ten kernels" tables come from it (tests/gpu/run_seed_bench.py does the same for the seed).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rwkv7 {

struct KernelTime {
  std::string name;
  double ms_per_step = 0, share = 0, calls_per_step = 0;
};

struct StepProfile {
  // "gpu": CUDA kernels and copies, by their time on the device. "cpu_self": on a machine
  // without a GPU, operators by self time (their own time, less the operators they called).
  std::string clock;
  int64_t steps = 0;
  double ms_per_step = 0;        // the clock's total over the profiled steps / steps
  std::vector<KernelTime> top;   // by ms_per_step, largest first
};

// Profiling starts at construction and ends at finish(); one at a time per process.
class StepProfiler {
 public:
  explicit StepProfiler(bool cuda);
  ~StepProfiler();
  StepProfile finish(int64_t steps, size_t top = 10);

 private:
  bool cuda_, running_ = true;
};

std::string to_json(const StepProfile& profile);

}  // namespace rwkv7
