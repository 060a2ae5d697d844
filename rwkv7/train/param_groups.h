// The seed's optimizer parameter groups (model.py configure_optimizers):
//   names containing "att.w0"                                   -> lr x 2, no decay
//   else, if weight_decay > 0, >= 2 dims after squeeze and ".weight" in the name -> decay
//   everything else                                             -> lr x 1, no decay
#pragma once
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace rwkv7 {

struct ParamGroupRule {
  double lr_scale;
  double weight_decay;
};

ParamGroupRule seed_param_group(const std::string& name, const at::Tensor& param,
                                double weight_decay);

}  // namespace rwkv7
