// Helpers for reading the golden files in tests/data (tests/data/README.md says where each comes
// from). A missing file throws, so the test that needs it fails; nothing is skipped.
#pragma once
#include <ATen/ATen.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <string>

#include "rwkv7/io/fs.h"

namespace rwkv7::testing {

inline std::string golden(const std::string& relative) {
  const std::string p = std::string(RWKV7_TEST_DATA_DIR) + "/" + relative;
  if (!fs::exists(p)) throw std::runtime_error("golden file missing: " + p);
  return p;
}

// A binidx prefix (the .bin and .idx must both exist).
inline std::string golden_binidx(const std::string& relative) {
  golden(relative + ".idx");
  golden(relative + ".bin");
  return std::string(RWKV7_TEST_DATA_DIR) + "/" + relative;
}

// JSON is YAML: yaml-cpp reads the golden .json files. It does not join JSON's UTF-16
// surrogate pairs (\ud83d\ude00), so those become YAML's \U0001f600 first.
inline YAML::Node load_json(const std::string& relative) {
  std::ifstream f(golden(relative));
  std::string s((std::istreambuf_iterator<char>(f)), {}), out;
  const std::regex pair(R"(\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2}))");
  std::sregex_iterator it(s.begin(), s.end(), pair), end;
  size_t last = 0;
  for (; it != end; ++it) {
    const unsigned hi = std::stoul((*it)[1].str(), nullptr, 16), lo = std::stoul((*it)[2].str(), nullptr, 16);
    char buf[16];
    std::snprintf(buf, sizeof(buf), "\\U%08x", 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
    out += s.substr(last, it->position() - last) + buf;
    last = it->position() + it->length();
  }
  return YAML::Load(out + s.substr(last));
}

// max |a - b| / max |b|, in float64
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor bd = b.to(at::kDouble);
  const double scale = bd.abs().max().item<double>();
  return (a.to(at::kDouble) - bd).abs().max().item<double>() / (scale > 0 ? scale : 1.0);
}

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// A fresh scratch folder under the build tree.
inline std::string scratch_dir(const std::string& name) {
  const std::string d = std::string(RWKV7_BINARY_DIR) + "/test-scratch/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace rwkv7::testing
