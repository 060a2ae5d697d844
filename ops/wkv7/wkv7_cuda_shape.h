// What the WKV-7 CUDA kernels are built for. No includes: the real CUDA build, the op's wrapper
// and the CPU emulation tests all read it.
#pragma once

namespace rwkv7_cuda {

constexpr int kHeadSize = 64;  // N by default: one thread per channel of a head (64 or 128)
constexpr int kChunk = 16;     // the forward saves the state every kChunk steps; T % kChunk == 0

}  // namespace rwkv7_cuda
