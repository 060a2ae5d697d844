// relu_square's CUDA kernels on the CPU (tests/cuda_emu), held against the channel mix's
// composite relu(x).square().
#include "tests/cuda_emu/cuda_emu.h"  // the CUDA environment first: the kernels compile against it
#include "ops/relu_square/relu_square_kernels.cuh"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "tests/cuda_emu/composite_check.h"

namespace rwkv7 {
namespace {

using testing::Tensors;

Tensors kernel(const Tensors& in, const Tensors& dout, at::ScalarType dtype) {
  at::Tensor out = at::empty_like(in[0]), dx = at::empty_like(in[0]);
  auto launch = [&](auto element) {
    using E = decltype(element);
    EXPECT_EQ(rwkv7_cuda::launch_relu_square_forward<E>(in[0].numel(), in[0].data_ptr(), out.data_ptr(), nullptr),
              cudaSuccess);
    EXPECT_EQ(rwkv7_cuda::launch_relu_square_backward<E>(in[0].numel(), in[0].data_ptr(), dout[0].data_ptr(),
                                                         dx.data_ptr(), nullptr),
              cudaSuccess);
  };
  testing::with_element_type(dtype, launch);
  return {out.to(at::kDouble), dx.to(at::kDouble)};
}

TEST(CudaEmu, ReluSquareMatchesComposite) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  testing::expect_kernel_matches_composite(
      "relu_square", {"out", "dx"}, [](const Tensors& in) { return Tensors{at::relu(in[0]).square()}; }, kernel,
      {at::randn({3, 7, 50}, gen, at::kDouble)}, {true}, {at::randn({3, 7, 50}, gen, at::kDouble)});
}

}  // namespace
}  // namespace rwkv7
