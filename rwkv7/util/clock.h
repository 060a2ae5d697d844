// Wall-clock seconds on a monotonic clock, for durations (step times, a run's elapsed time).
#pragma once
#include <chrono>

namespace rwkv7 {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace rwkv7
