// rwkv7 logits --model M.pth --tokens 34,105,110 [--out F.json] [--state S.pth]
// Runs the checkpoint (its shape read from its tensors) on one sequence in fp32 and writes
// {"last_logits": [V floats], "argmax": [T ints]}. With --state the sequence starts from a tuned
// state (RWKV-PEFT's time_state, rwkv7/peft/tuned_state.h) instead of 0, in RNN mode
// (forward_with_state: the same numbers as the parallel forward). Logits that are not finite (a model
// with NaN or Inf weights) are refused, naming the model: JSON has no NaN.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "cli.h"
#include "commands.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/io/fs.h"
#include "rwkv7/model/inference.h"
#include "rwkv7/model/load.h"
#include "rwkv7/peft/tuned_state.h"

namespace rwkv7::cmd {

int logits(int argc, char** argv) {
  const cli::Args args = cli::parse(argc, argv, {"model", "tokens", "out", "state"});
  if (args.help) {
    std::printf(
        "usage: rwkv7 logits --model M.pth --tokens 34,105,110 [--out F.json] [--state S.pth]\n"
        "  --model   a checkpoint, .pth or .safetensors (the model's shape comes from its tensors)\n"
        "  --tokens  comma-separated token ids\n"
        "  --out     write the JSON here instead of stdout\n"
        "  --state   start from a tuned state: RWKV-PEFT's state-tuning rwkv-<n>.pth (blocks.<i>.att.time_state),\n"
        "            or a file rwkv7 merge wrote from one\n");
    return 0;
  }
  const std::string path = args.require("model");
  const std::vector<int64_t> tokens = cli::parse_int_list("tokens", args.require("tokens"));

  RWKV model = load_model(path);
  model->eval();
  for (int64_t t : tokens)
    if (t < 0 || t >= model->shape.vocab_size)
      throw cli::UsageError(fmt::format("--tokens: id {} is outside the vocabulary [0, {})", t,
                                        model->shape.vocab_size));

  const std::string state_path = args.get("state", "");
  if (args.has("state") && state_path.empty()) throw cli::UsageError("--state needs a file");
  ModelState state = initial_state(model, state_path, 1);  // checked before any work

  at::InferenceMode inference;
  const at::Tensor idx = at::tensor(tokens, at::kLong).view({1, -1});
  const at::Tensor out = (state_path.empty() ? model->forward(idx) : forward_with_state(model, idx, state))[0]
                             .to(at::kFloat)
                             .contiguous();  // [T, V]
  const at::Tensor last = out[-1].contiguous();
  const at::Tensor argmax = out.argmax(-1).contiguous();
  // JSON has no NaN or Inf (and an argmax over NaN means nothing): refuse, naming the first one
  const at::Tensor bad = out.isfinite().logical_not().nonzero();
  if (bad.size(0) > 0) {
    const int64_t t = bad[0][0].item<int64_t>(), id = bad[0][1].item<int64_t>();
    const float x = out[t][id].item<float>();
    throw std::runtime_error(fmt::format("{}: the logits are not finite ({} at token {} of {}, logit {}): the model's "
                                         "weights hold NaN or Inf?", path, std::isnan(x) ? "NaN" : x > 0 ? "inf" : "-inf",
                                         t, out.size(0), id));
  }

  std::string json = "{\"last_logits\": [";
  for (int64_t i = 0; i < last.numel(); ++i)
    json += fmt::format("{}{:.9g}", i ? ", " : "", last.data_ptr<float>()[i]);
  json += "], \"argmax\": [";
  for (int64_t i = 0; i < argmax.numel(); ++i)
    json += fmt::format("{}{}", i ? ", " : "", argmax.data_ptr<int64_t>()[i]);
  json += "]}\n";

  if (args.has("out")) {
    cli::refuse_output_over_inputs("out", args.get("out", ""), {args.get("model", ""), args.get("state", "")});
    fs::write_file_atomically(args.get("out", ""), json);
  } else {
    std::fputs(json.c_str(), stdout);
    if (std::fflush(stdout) != 0 || std::ferror(stdout))
      throw std::runtime_error(std::string("stdout: cannot write the logits: ") + std::strerror(errno));
  }
  return 0;
}

}  // namespace rwkv7::cmd
