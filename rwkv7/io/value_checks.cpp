#include "rwkv7/io/value_checks.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <limits>

namespace rwkv7 {

namespace {

double largest_finite(at::ScalarType t) {
  switch (t) {
    case at::kHalf: return 65504.0;
    case at::kBFloat16: return static_cast<double>(std::numeric_limits<c10::BFloat16>::max());
    case at::kFloat: return static_cast<double>(std::numeric_limits<float>::max());
    default: return std::numeric_limits<double>::max();
  }
}

}  // namespace

void check_finite(const StateDict& dict, const std::string& path) {
  for (const auto& [name, t] : dict) {
    if (!at::isFloatingType(t.scalar_type()) || t.numel() == 0) continue;
    const at::Tensor bad = at::logical_not(at::isfinite(t)).reshape({-1});
    if (!bad.any().item<bool>()) continue;
    const int64_t i = bad.nonzero()[0][0].item<int64_t>();
    throw CheckpointError(fmt::format("{}: {} holds {} (element {} of {}): not a usable weight", path, name,
                                      t.reshape({-1})[i].item<double>(), i, t.numel()));
  }
}

void check_fits_dtype(const StateDict& dict, at::ScalarType target, const std::string& path) {
  const double limit = largest_finite(target);
  for (const auto& [name, t] : dict) {
    if (!at::isFloatingType(t.scalar_type()) || t.numel() == 0) continue;
    const double top = t.abs().max().item<double>();
    if (top > limit)
      throw CheckpointError(fmt::format("{}: {} holds a value of magnitude {:g}, beyond {}'s largest {:g}: it would "
                                        "become inf", path, name, top, c10::toString(target), limit));
  }
}

void check_float_weights(const StateDict& dict, const std::string& path) {
  for (const auto& [name, t] : dict)
    if (!at::isFloatingType(t.scalar_type()))
      throw CheckpointError(fmt::format("{}: {} is {}, a weight must be a float tensor (fp32, bf16, fp16 or fp64)",
                                        path, name, c10::toString(t.scalar_type())));
}

}  // namespace rwkv7
