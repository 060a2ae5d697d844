#include "fuzz_targets.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "rwkv7/io/checkpoint.h"
#include "rwkv7/io/safetensors.h"
#include "rwkv7/train/config.h"
#include "rwkv7/data/data.h"

namespace rwkv7::fuzz {

void pth(const uint8_t* data, size_t size) {
  try {
    const StateDict d = read_pth_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.pth");
    for (const auto& kv : d) (void)kv.second.sum();  // touch every tensor's memory
  } catch (const CheckpointError&) {
  }
}

void safetensors(const uint8_t* data, size_t size) {
  try {
    const StateDict d =
        read_safetensors_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
    for (const auto& kv : d) (void)kv.second.sum();
  } catch (const CheckpointError&) {
  }
}

void binidx(const uint8_t* data, size_t size) {
  uint32_t idx_len = 0;
  for (size_t i = 0; i < 4 && i < size; ++i) idx_len |= uint32_t(data[i]) << (8 * i);
  const size_t body = size > 4 ? size - 4 : 0;
  idx_len = static_cast<uint32_t>(std::min<size_t>(idx_len, body));
  const std::string prefix = "/tmp/rwkv7-fuzz-" + std::to_string(::getpid());
  auto write = [](const std::string& path, const uint8_t* p, size_t n) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (n) std::fwrite(p, 1, n, f);
    std::fclose(f);
  };
  write(prefix + ".idx", data + 4, idx_len);
  write(prefix + ".bin", data + 4 + idx_len, body - idx_len);
  try {
    BinIdx b(prefix);
    int64_t tokens[16];
    const uint64_t n = std::min<uint64_t>(16, b.num_tokens());
    b.read(0, n, tokens);
    (void)b.max_token();
    b.read(b.num_tokens() - n, n, tokens);
  } catch (const DataError&) {
  }
}

void config(const uint8_t* data, size_t size) {
  try {
    (void)parse_train_config(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  } catch (const ConfigError&) {
  }
}

}  // namespace rwkv7::fuzz
