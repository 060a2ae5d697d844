// The fp64 WKV-7 golden cases (tests/data/wkv7_cases.pth, wkv7_state_cases.pth), as the op's tests read them:
// case name -> field (r w k v a b dy, y, dr dw dk dv da db) -> tensor.
#pragma once
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>

#include "golden.h"
#include "rwkv7/io/checkpoint.h"

namespace rwkv7::testing {

inline const char* const kWkv7Inputs[] = {"r", "w", "k", "v", "a", "b"};
inline const char* const kWkv7Grads[] = {"dr", "dw", "dk", "dv", "da", "db"};

using Wkv7Case = std::map<std::string, at::Tensor>;

// f must throw a c10::Error whose message names argument `arg` (in quotes).
inline void expect_error_naming(const std::function<void()>& f, const std::string& arg) {
  try {
    f();
    ADD_FAILURE() << "no error for a bad '" << arg << "'";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'" + arg + "'"), std::string::npos) << e.what();
  }
}

// file: wkv7_cases.pth (the seed's), or wkv7_state_cases.pth (RWKV-PEFT's, with an initial
// state "s" [H, N, N] shared by the batch and its gradient "ds").
inline std::map<std::string, Wkv7Case> wkv7_golden_cases(const std::string& file = "wkv7_cases.pth") {
  std::map<std::string, Wkv7Case> cases;
  for (const auto& [name, t] : read_pth(golden(file))) {
    const size_t dot = name.rfind('.');
    cases[name.substr(0, dot)][name.substr(dot + 1)] = t;
  }
  return cases;
}

}  // namespace rwkv7::testing
