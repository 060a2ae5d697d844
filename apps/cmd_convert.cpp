// rwkv7 convert --in A.pth|A.safetensors --out B.pth|B.safetensors [--format pth|safetensors]
//               [--dtype fp32|bf16|fp16]
// Reads a dict of tensors in either format (a torch.save dict, plain or the OrderedDict of
// state_dict(); or safetensors) and writes it in either, names, order and shapes kept, optionally
// casting floating tensors. The format of --out comes from its extension unless --format says.
#include <ATen/ATen.h>

#include <fmt/format.h>

#include <cstdio>

#include "cli.h"
#include "commands.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/io/safetensors.h"
#include "rwkv7/io/fs.h"
#include "rwkv7/io/value_checks.h"

namespace rwkv7::cmd {

int convert(int argc, char** argv) {
  const cli::Args args = cli::parse(argc, argv, {"in", "out", "dtype", "format"});
  if (args.help) {
    std::printf(
        "usage: rwkv7 convert --in A.pth --out B.safetensors [--format pth|safetensors] [--dtype fp32|bf16|fp16]\n"
        "  --in      a torch.save dict of tensors, or a .safetensors file\n"
        "  --out     where to write (atomically): a plain torch.save dict, or safetensors\n"
        "  --format  the format of --out (default: safetensors for a .safetensors name, else pth)\n"
        "  --dtype   cast floating-point tensors (default: keep each tensor's dtype)\n");
    return 0;
  }
  const std::string dtype = args.get("dtype", "keep");
  at::ScalarType target = at::kFloat;
  if (dtype == "bf16") target = at::kBFloat16;
  else if (dtype == "fp16") target = at::kHalf;
  else if (dtype != "fp32" && dtype != "keep")
    throw cli::UsageError("--dtype must be fp32, bf16 or fp16, got '" + dtype + "'");
  const std::string out = args.require("out");
  const std::string format = args.get("format", is_safetensors_path(out) ? "safetensors" : "pth");
  if (format != "pth" && format != "safetensors")
    throw cli::UsageError("--format must be pth or safetensors, got '" + format + "'");

  const std::string in = args.require("in");
  cli::refuse_output_over_inputs("out", out, {in});
  StateDict dict = read_weights(in);
  check_finite(dict, in);
  if (dtype != "keep") check_fits_dtype(dict, target, in);
  if (dtype != "keep")
    for (auto& kv : dict)
      if (at::isFloatingType(kv.second.scalar_type())) kv.second = kv.second.to(target);
  if (format == "safetensors") write_safetensors(out, dict);
  else write_pth(out, dict);
  std::printf("wrote %zu tensors to %s (%s)\n", dict.size(), out.c_str(), format.c_str());
  return 0;
}

}  // namespace rwkv7::cmd
