// The element types the CUDA kernels take, for the host-side entry points (no CUDA types here:
// each op's *_cuda_kernels.h includes it, and so do the LibTorch wrappers).
#pragma once

namespace rwkv7_cuda {

enum class DType { kFloat32, kBFloat16 };

}  // namespace rwkv7_cuda
