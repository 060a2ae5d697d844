// How a fused op's CUDA kernels (run through the emulation) are held against the composite ATen
// code they replace (the model's code before fusion), the same way for every op:
//
//   reference   the composite in float64 with autograd, on the inputs as the kernel sees them
//   float32     every output and gradient of the kernel within 1e-5 of it (max |got - want| / max |want|)
//   bfloat16    every output and gradient of the kernel no further from it than the composite run
//               in bfloat16 is (or than 2^-9, the rounding of a bf16 store, when that is larger)
//
// A kernel run gets the inputs and the output gradients in its dtype and returns, in float64,
// its outputs followed by the gradients of the inputs marked differentiable.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "golden.h"

namespace rwkv7::testing {

using Tensors = std::vector<at::Tensor>;
using CompositeFn = std::function<Tensors(const Tensors& inputs)>;
using KernelFn = std::function<Tensors(const Tensors& inputs, const Tensors& douts, at::ScalarType dtype)>;

// f(element) with a value of the kernels' element type for `dtype` (__nv_bfloat16 or float), so
// that a test's launch lambda picks its template argument from it.
template <typename F>
void with_element_type(at::ScalarType dtype, F&& f) {
  if (dtype == at::kBFloat16)
    f(__nv_bfloat16{});
  else
    f(float{});
}

// Outputs then gradients of the differentiable inputs, in float64.
inline Tensors composite_run(const CompositeFn& f, const Tensors& inputs, const std::vector<bool>& differentiable,
                             const Tensors& douts, at::ScalarType dtype) {
  Tensors in;
  for (size_t i = 0; i < inputs.size(); ++i) {
    at::Tensor t = inputs[i].is_floating_point() ? inputs[i].to(dtype) : inputs[i];
    in.push_back(differentiable[i] ? t.detach().requires_grad_(true) : t);
  }
  const Tensors outs = f(in);
  at::Tensor loss = at::zeros({}, outs[0].options().dtype(at::kDouble));
  for (size_t i = 0; i < outs.size(); ++i) loss = loss + (outs[i].to(at::kDouble) * douts[i].to(dtype).to(at::kDouble)).sum();
  // (dout cast to dtype, as the kernel gets it; the product in float64 so the sum adds no error)
  loss.backward();
  Tensors result;
  for (const at::Tensor& o : outs) result.push_back(o.detach().to(at::kDouble));
  for (size_t i = 0; i < in.size(); ++i)
    if (differentiable[i]) result.push_back(in[i].grad().to(at::kDouble));
  return result;
}

inline void expect_kernel_matches_composite(const std::string& what, const std::vector<std::string>& names,
                                            const CompositeFn& composite, const KernelFn& kernel,
                                            const Tensors& inputs64, const std::vector<bool>& differentiable,
                                            const Tensors& douts64) {
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    Tensors in;  // the inputs as the kernel sees them, back in float64 for the reference
    for (const at::Tensor& t : inputs64) in.push_back(t.is_floating_point() ? t.to(dtype).to(at::kDouble) : t);
    Tensors dout;
    for (const at::Tensor& t : douts64) dout.push_back(t.to(dtype).to(at::kDouble));
    const Tensors want = composite_run(composite, in, differentiable, dout, at::kDouble);
    Tensors kin;
    for (const at::Tensor& t : in) kin.push_back(t.is_floating_point() ? t.to(dtype).contiguous() : t.contiguous());
    Tensors kdout;
    for (const at::Tensor& t : dout) kdout.push_back(t.to(dtype).contiguous());
    const Tensors got = kernel(kin, kdout, dtype);
    const Tensors composite_low = dtype == at::kBFloat16 ? composite_run(composite, in, differentiable, dout, dtype) : Tensors{};
    ASSERT_EQ(got.size(), want.size()) << what;
    ASSERT_EQ(names.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got[i].sizes(), want[i].sizes()) << what << " " << names[i];
      const double err = relative_error(got[i], want[i]);
      if (dtype == at::kFloat) {
        std::printf("  %s fp32 %-6s kernel %.2e\n", what.c_str(), names[i].c_str(), err);
        EXPECT_LE(err, 1e-5) << what << " fp32: " << names[i];
      } else {
        const double bound = std::max(relative_error(composite_low[i], want[i]), 1.0 / 512);
        std::printf("  %s bf16 %-6s kernel %.2e, composite in bf16 %.2e\n", what.c_str(), names[i].c_str(), err,
                    relative_error(composite_low[i], want[i]));
        EXPECT_LE(err, bound) << what << " bf16: " << names[i];
      }
    }
  }
}

}  // namespace rwkv7::testing
