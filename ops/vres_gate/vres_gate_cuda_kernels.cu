// vres_gate's CUDA entry points for nvcc: the real CUDA environment, the kernels, dtype dispatch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "../cuda_launch.cuh"
#include "vres_gate_cuda_kernels.h"
#include "vres_gate_kernels.cuh"

namespace rwkv7_cuda {

long vres_gate_partial_floats(long rows, int C) { return long(vres_gate_partials(rows)) * C; }

cudaError_t vres_gate_forward(DType dtype, long rows, int C, const void* v, const void* v_first, const void* v_in,
                              const void* v0, void* out, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_vres_gate_forward<__nv_bfloat16>(rows, C, v, v_first, v_in, v0, out, stream)
             : launch_vres_gate_forward<float>(rows, C, v, v_first, v_in, v0, out, stream);
}

cudaError_t vres_gate_backward(DType dtype, long rows, int C, const void* v, const void* v_first, const void* v_in,
                               const void* v0, const void* dout, void* dv, void* dv_first, void* dv_in, void* dv0,
                               float* partial, cudaStream_t stream) {
  return dtype == DType::kBFloat16
             ? launch_vres_gate_backward<__nv_bfloat16>(rows, C, v, v_first, v_in, v0, dout, dv, dv_first, dv_in,
                                                        dv0, partial, stream)
             : launch_vres_gate_backward<float>(rows, C, v, v_first, v_in, v0, dout, dv, dv_first, dv_in, dv0,
                                                partial, stream);
}

}  // namespace rwkv7_cuda
