#include "rwkv7/peft/pissa_start.h"

#include <fmt/format.h>

namespace rwkv7 {

const at::Tensor& pissa_start_tensor(const StateDict& file, const std::string& path, const std::string& module,
                                     const char* which) {
  for (const std::string& key : {module + ".init_" + which, "model." + module + ".init_" + which})
    for (const auto& kv : file)
      if (kv.first == key) return kv.second;
  throw CheckpointError(fmt::format("{}: {}.init_{} is missing (the init of another run or model?)", path, module, which));
}

}  // namespace rwkv7
