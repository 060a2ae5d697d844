// The one TORCH_LIBRARY of the rwkv7 op library (PyTorch's custom-op recipe): it declares every
// row of ops/op_table.h, which holds each operator's schema, the math and the preconditions, so
// that table is the library's whole interface. Each op's kernels live in its own folder,
// ops/<op>/, one TORCH_LIBRARY_IMPL per dispatch key (docs/architecture.md).
#include <torch/library.h>

#include <string>

#include "op_table.h"

TORCH_LIBRARY(rwkv7, m) {
  for (const rwkv7_ops::OpRow& row : rwkv7_ops::kOpTable) m.def(row.schema);
}

// The table for the registration test (tests/python/test_op_registration.py, through ctypes): one
// line per row, "<name> <kernel>,<kernel>,...", the kernels named as PyTorch's dispatch keys
// (CUDA only where the library was built with its CUDA kernels).
extern "C" __attribute__((visibility("default"))) const char* rwkv7_op_table() {
  static const std::string text = [] {
#ifdef RWKV7_HAS_CUDA_OP
    constexpr bool with_cuda = true;
#else
    constexpr bool with_cuda = false;
#endif
    std::string s;
    for (const rwkv7_ops::OpRow& row : rwkv7_ops::kOpTable) {
      std::string keys;
      auto add = [&](unsigned bit, const char* key) {
        if (row.kernels & bit) keys += (keys.empty() ? "" : ",") + std::string(key);
      };
      add(rwkv7_ops::kCPU, "CPU");
      if (with_cuda) add(rwkv7_ops::kCUDA, "CUDA");
      add(rwkv7_ops::kMeta, "Meta");
      add(rwkv7_ops::kAutograd, "Autograd");
      s += std::string(row.name) + " " + keys + "\n";
    }
    return s;
  }();
  return text.c_str();
}
