// Model FLOPs per trained token and the device's peak: the MFU figure of `rwkv7 bench` and the
// progress line, and peak memory.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <string>

#include "rwkv7/model/model_config.h"
#include "rwkv7/train/config.h"

namespace rwkv7 {

// Training FLOPs per token (forward + backward) from the shape alone:
//   6 * (every matmul weight: the four C x C projections, the four LoRAs, the channel mix's
//        C x F and F x C, the head's C x V; not the embedding, a lookup)
// + 24 * C * N per layer for the WKV-7 scan (per head and token: S a, the rank-2 update and S r,
//   about 4 N^2 multiply-adds forward, twice that backward).
// Elementwise work (norms, lerps, gates) is left out, as MFU conventions do.
double training_flops_per_token(const ModelShape& shape);

// Peak dense TFLOP/s of `device` for this precision: `configured` when > 0; else, for bf16 on a
// known GPU, its datasheet figure (H100/H200 SXM 989, A100 312, RTX 4090 165); else 0 (unknown:
// no MFU shown). `name` receives the device's name.
double peak_tflops(const c10::Device& device, Precision precision, double configured, std::string* name);

// The process's peak memory in bytes: allocated GPU memory on CUDA, max RSS on the CPU.
int64_t peak_memory_bytes(const c10::Device& device);
// What the process holds now: allocated GPU memory on CUDA, the RSS on the CPU.
int64_t current_memory_bytes(const c10::Device& device);
// From now on: the peak starts again at what is held now (CPU: freed heap memory is handed back
// to the system first, then the kernel's high-water mark of the RSS is reset, /proc/self/clear_refs).
void reset_peak_memory(const c10::Device& device);
inline double peak_memory_gib(const c10::Device& device) { return peak_memory_bytes(device) / double(1 << 30); }

}  // namespace rwkv7
