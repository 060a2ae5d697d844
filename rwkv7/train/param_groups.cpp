#include "rwkv7/train/param_groups.h"

namespace rwkv7 {

ParamGroupRule seed_param_group(const std::string& name, const at::Tensor& p, double wd) {
  if (name.find("att.w0") != std::string::npos) return {2.0, 0.0};
  int64_t dims = 0;  // dimensions after squeeze()
  for (int64_t s : p.sizes()) dims += s != 1;
  if (dims >= 2 && wd > 0 && name.find(".weight") != std::string::npos) return {1.0, wd};
  return {1.0, 0.0};
}

}  // namespace rwkv7
