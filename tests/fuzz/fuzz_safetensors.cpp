// libFuzzer entry for rwkv7::fuzz::safetensors (see fuzz_targets.h).
#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rwkv7::fuzz::safetensors(data, size);
  return 0;
}
