// WKV-7's CUDA entry points for nvcc: the real CUDA environment, then the kernels
// (wkv7_kernels.cuh, which the CPU emulation tests compile too), then dtype dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "wkv7_cuda_kernels.h"
#include "wkv7_kernels.cuh"

namespace rwkv7_cuda {

cudaError_t wkv7_forward(DType dtype, int B, int T, int H, const void* r, const void* w,
                         const void* k, const void* v, const void* a, const void* b, void* y,
                         float* s, float* sa, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_forward<__nv_bfloat16>(B, T, H, r, w, k, v, a, b, y, s, sa, stream)
             : launch_forward<float>(B, T, H, r, w, k, v, a, b, y, s, sa, stream);
}

cudaError_t wkv7_backward(DType dtype, int B, int T, int H, const void* r, const void* w,
                          const void* k, const void* v, const void* a, const void* b,
                          const void* dy, const float* s, const float* sa, void* dr, void* dw,
                          void* dk, void* dv, void* da, void* db, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_backward<__nv_bfloat16>(B, T, H, r, w, k, v, a, b, dy, s, sa, dr, dw, dk,
                                              dv, da, db, stream)
             : launch_backward<float>(B, T, H, r, w, k, v, a, b, dy, s, sa, dr, dw, dk, dv, da,
                                      db, stream);
}

}  // namespace rwkv7_cuda
