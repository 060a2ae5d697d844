// What every op's LibTorch CUDA wrapper (ops/<op>/<op>_cuda.cpp) needs around its launchers:
// the kernel dtype of a tensor and a launch error as one clear line naming the op.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <cuda_runtime_api.h>

#include "cuda_dtype.h"

namespace rwkv7_ops {

inline rwkv7_cuda::DType cuda_kernel_dtype(const at::Tensor& t, const char* op, const char* arg) {
  if (t.scalar_type() == at::kBFloat16) return rwkv7_cuda::DType::kBFloat16;
  if (t.scalar_type() == at::kFloat) return rwkv7_cuda::DType::kFloat32;
  TORCH_CHECK(false, op, ": argument '", arg, "' has dtype ", t.scalar_type(),
              "; the CUDA kernels take bfloat16 or float32");
}

inline void check_cuda_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, op, ": kernel launch failed: ", cudaGetErrorString(err));
}

}  // namespace rwkv7_ops
