// LAUNCH_KERNEL for nvcc: a launch on `stream` that returns the launch's error. Kernel files
// (*.cuh) launch through this macro so that the CPU emulation (tests/cuda_emu/cuda_emu.h), which
// defines it its own way, runs the same launcher code.
#pragma once
#include <cuda_runtime.h>

#define LAUNCH_KERNEL(kernel, grid, block, stream, ...) \
  (kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__), cudaGetLastError())
