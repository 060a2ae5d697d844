// The readers that take untrusted bytes, as fuzz targets: a .pth, a .safetensors, a binidx pair,
// a YAML config. Each returns normally on input it accepts or refuses with its own error type; any
// other exception, crash or sanitizer report is a finding. Built twice: with libFuzzer
// (scripts/fuzz.sh) and as a ctest that replays tests/fuzz/corpus (rwkv7_fuzz_replay).
#pragma once
#include <cstddef>
#include <cstdint>

namespace rwkv7::fuzz {
void pth(const uint8_t* data, size_t size);
void safetensors(const uint8_t* data, size_t size);
// bytes 0..3: length L of the index (little-endian, clamped); then L index bytes; the rest is .bin
void binidx(const uint8_t* data, size_t size);
void config(const uint8_t* data, size_t size);
}  // namespace rwkv7::fuzz
