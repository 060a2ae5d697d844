// rwkv7 merge --base B.pth --adapter A.pth --out M.pth [--lora-alpha 32 | --pissa-init I.pth]
// Merges an RWKV-PEFT adapter (the rwkv-<n>.pth of a state, LoRA, DiSHA or PiSSA run) into its base
// model as RWKV-PEFT's merge scripts do (rwkv7/peft/merge.h) and writes the result atomically, as
// a plain .pth dict (what torch.load(weights_only=True) and this tool read), or as safetensors
// for a .safetensors name.
#include <fmt/format.h>

#include <cstdio>
#include <optional>

#include "cli.h"
#include "commands.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/io/safetensors.h"
#include "rwkv7/peft/fine_tune_origin.h"
#include "rwkv7/peft/merge.h"
#include "rwkv7/io/fs.h"
#include "rwkv7/io/value_checks.h"
#include "rwkv7/train/run_dir.h"

namespace rwkv7::cmd {

int merge(int argc, char** argv) {
  const cli::Args args = cli::parse(argc, argv, {"base", "adapter", "out", "lora-alpha", "pissa-init"});
  if (args.help) {
    std::printf(
        "usage: rwkv7 merge --base B.pth --adapter A.pth --out M.pth [--lora-alpha 32 | --pissa-init I.pth]\n"
        "  --base        the model the adapter was trained on (.pth or .safetensors)\n"
        "  --adapter     RWKV-PEFT's rwkv-<n>.pth: state tuning (time_state), LoRA or PiSSA (lora_A/B) or DiSHA\n"
        "                (disha), with the LayerNorms it trained, which replace the base's\n"
        "  --out         where to write (atomically): a plain .pth dict, or safetensors for a .safetensors name;\n"
        "                never one of the inputs\n"
        "  --lora-alpha  LoRA only, required: the lora_alpha of the training run (the update is scaled by\n"
        "                alpha / r; RWKV-PEFT's merge script assumes 16 unless told)\n"
        "  --pissa-init  PiSSA only, required: the run's init_pissa.pth (its starting B0, A0): W' = W - B0 A0 + B A\n"
        "  A merged state keeps its time_state tensors beside the weights: use the merged file with\n"
        "  --model BASE --state M.pth in logits, generate and eval (or the merged file alone as --model).\n");
    return 0;
  }
  const std::string base_path = args.require("base"), adapter_path = args.require("adapter");
  const std::string out = args.require("out");
  std::optional<double> alpha;
  if (args.has("lora-alpha")) {
    alpha = cli::parse_number("lora-alpha", args.get("lora-alpha", ""), 0, 1e12);
    if (*alpha <= 0) throw cli::UsageError("--lora-alpha must be > 0");
  }

  const bool pissa = args.has("pissa-init");
  cli::refuse_output_over_inputs("out", out, {base_path, adapter_path, args.get("pissa-init", "")});

  // The adapter first: a wrong call fails before a large base is read.
  const StateDict adapter = read_weights(adapter_path);
  const AdapterKind kind = adapter_kind(adapter, adapter_path);
  check_float_weights(adapter, adapter_path);
  check_finite(adapter, adapter_path);
  if (pissa && alpha) throw cli::UsageError("--lora-alpha and --pissa-init exclude each other (PiSSA has no alpha)");
  // A PiSSA adapter is LoRA-shaped; merged as LoRA it would keep B0 A0 twice. Its run's files say what it is.
  const AdapterEvidence beside = evidence_beside(adapter_path, RunDir::state_file(adapter_path, StateSharding{}));
  const bool made_by_pissa = beside.has_origin ? beside.origin.kind == AdapterKind::pissa : !beside.folder_pissa.empty();
  if (kind == AdapterKind::lora && !pissa && made_by_pissa) {
    const std::string init = beside.folder_pissa.empty() ? "its run's init_pissa.pth" : beside.folder_pissa;
    throw cli::UsageError(fmt::format("{} is a PiSSA adapter ({}): merge it with --pissa-init {}, not as LoRA",
                                      adapter_path, beside.has_origin ? "its training state says so"
                                                                      : "its folder holds " + beside.folder_pissa, init));
  }
  if (kind == AdapterKind::lora && !alpha && !pissa)
    throw cli::UsageError(adapter_path + " is a LoRA adapter: --lora-alpha is required, the lora_alpha it was "
                          "trained with (the update is scaled by alpha / r)");
  if (kind != AdapterKind::lora && alpha)
    throw cli::UsageError(fmt::format("--lora-alpha is for LoRA adapters; {} is a {} adapter", adapter_path,
                                      adapter_title(kind)));

  MergeReport report;
  const StateDict init = pissa ? read_weights(args.get("pissa-init", "")) : StateDict{};
  if (pissa) check_float_weights(init, args.get("pissa-init", ""));
  if (pissa) check_finite(init, args.get("pissa-init", ""));
  const StateDict base = read_weights(base_path);
  check_float_weights(base, base_path);
  check_finite(base, base_path);
  const StateDict merged = merge_adapter(base, adapter, alpha, base_path, adapter_path, &report, pissa ? &init : nullptr);
  check_finite(merged, out + " (the merged model: a base tensor's dtype cannot hold it)");
  if (is_safetensors_path(out)) write_safetensors(out, merged);
  else write_pth(out, merged);
  std::printf("merged the %s adapter %s into %s: %lld weights changed, %lld tensors replaced, %lld added; "
              "wrote %zu tensors to %s\n",
              pissa ? "PiSSA" : adapter_title(kind), adapter_path.c_str(), base_path.c_str(), static_cast<long long>(report.merged),
              static_cast<long long>(report.replaced), static_cast<long long>(report.added), merged.size(),
              out.c_str());
  return 0;
}

}  // namespace rwkv7::cmd
