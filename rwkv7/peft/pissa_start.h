// PiSSA's start (B0, A0): the top-r part of each adapted weight, which a PiSSA run saves as
// init_pissa.pth and which merging and resuming need back. One lookup for both.
#pragma once
#include <string>

#include "rwkv7/io/checkpoint.h"

namespace rwkv7 {

// <module>.init_<which> (which: lora_A or lora_B) in `file`, under our name or RWKV-PEFT's
// ("model." in front). Throws CheckpointError naming `path` when it is missing.
const at::Tensor& pissa_start_tensor(const StateDict& file, const std::string& path, const std::string& module,
                                     const char* which);

}  // namespace rwkv7
