// A run's metrics.jsonl as the tests read it: loss, lr and gradient norm of every step.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

namespace rwkv7::testing {

struct Step {
  double loss, lr, grad_norm;
};

inline std::vector<Step> read_metrics(const std::string& proj_dir) {
  std::vector<Step> out;
  std::ifstream f(proj_dir + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    const YAML::Node n = YAML::Load(line);
    auto num = [&](const char* k) { return n[k].IsNull() ? NAN : n[k].as<double>(); };  // null: not finite
    if (n["step"]) out.push_back({num("loss"), num("lr"), num("grad_norm")});
  }
  return out;
}

}  // namespace rwkv7::testing
