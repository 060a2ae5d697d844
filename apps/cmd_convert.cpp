// rwkv7 convert --in A.pth --out B.pth [--dtype fp32|bf16|fp16]
// Reads any torch.save dict of tensors (plain or the OrderedDict of state_dict()), writes a
// plain dict that torch.load(weights_only=True) reads, optionally casting floating tensors.
#include <ATen/ATen.h>

#include <cstdio>

#include "cli.h"
#include "commands.h"
#include "rwkv7/io/checkpoint.h"

namespace rwkv7::cmd {

int convert(int argc, char** argv) {
  const cli::Args args = cli::parse(argc, argv, {"in", "out", "dtype"});
  if (args.help) {
    std::printf(
        "usage: rwkv7 convert --in A.pth --out B.pth [--dtype fp32|bf16|fp16]\n"
        "  --in     a torch.save file holding a dict of tensors\n"
        "  --out    where to write the plain dict (atomically)\n"
        "  --dtype  cast floating-point tensors (default: keep each tensor's dtype)\n");
    return 0;
  }
  const std::string dtype = args.get("dtype", "keep");
  at::ScalarType target = at::kFloat;
  if (dtype == "bf16") target = at::kBFloat16;
  else if (dtype == "fp16") target = at::kHalf;
  else if (dtype != "fp32" && dtype != "keep")
    throw cli::UsageError("--dtype must be fp32, bf16 or fp16, got '" + dtype + "'");

  StateDict dict = read_pth(args.require("in"));
  if (dtype != "keep")
    for (auto& kv : dict)
      if (at::isFloatingType(kv.second.scalar_type())) kv.second = kv.second.to(target);
  write_pth(args.require("out"), dict);
  std::printf("wrote %zu tensors to %s\n", dict.size(), args.require("out").c_str());
  return 0;
}

}  // namespace rwkv7::cmd
