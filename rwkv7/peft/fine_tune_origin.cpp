#include "rwkv7/peft/fine_tune_origin.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <cstdlib>

#include "rwkv7/io/fs.h"

namespace rwkv7 {

StateDict FineTuneOrigin::state_dict() const {
  const FineTuneOrigin& o = *this;
  StateDict state;
  auto i64 = [](int64_t v) { return at::tensor(v, at::kLong); };
  state.emplace_back("run.ft.base_digest", i64(o.base_digest));
  state.emplace_back("run.ft.pissa_digest", i64(o.pissa_digest));
  state.emplace_back("run.ft.lora_load_digest", i64(o.lora_load_digest));
  state.emplace_back("run.ft.kind", i64(static_cast<int64_t>(o.kind)));
  state.emplace_back("run.ft.rank", i64(o.rank));
  state.emplace_back("run.ft.lora_alpha", at::tensor(o.lora_alpha, at::kDouble));
  return state;
}

bool has_origin(const StateDict& state) { return has_tensor(state, "run.ft.kind"); }

void FineTuneOrigin::load_state_dict(const StateDict& state, const std::string& path) {
  auto i64 = [&](const char* n) { return find_tensor(state, n, path).item<int64_t>(); };
  FineTuneOrigin o;
  o.base_digest = i64("run.ft.base_digest");
  o.pissa_digest = i64("run.ft.pissa_digest");
  o.lora_load_digest = i64("run.ft.lora_load_digest");
  const int64_t code = i64("run.ft.kind");
  // the code is the enum's value: state 0, lora 1, disha 2, pissa 3 (states already written keep it)
  if (code < 0 || code >= static_cast<int64_t>(std::size(EnumNames<AdapterKind>::rows)))
    throw CheckpointError(fmt::format("{}: run.ft.kind is {}, no fine-tuning kind (0-3)", path, code));
  o.kind = static_cast<AdapterKind>(code);
  o.rank = i64("run.ft.rank");
  o.lora_alpha = find_tensor(state, "run.ft.lora_alpha", path).item<double>();
  *this = o;
}

AdapterEvidence evidence_beside(const std::string& adapter_path, const std::string& state_path) {
  AdapterEvidence e;
  if (fs::is_regular_file(state_path)) {
    const StateDict state = read_pth(state_path);
    if (has_origin(state)) {
      e.has_origin = true;
      e.origin.load_state_dict(state, state_path);
    }
  }
  // beside the file itself, not beside a link to it
  char* real = ::realpath(adapter_path.c_str(), nullptr);
  const std::string resolved = real ? real : adapter_path;
  std::free(real);
  const std::string pissa = fs::parent_directory(resolved) + "/init_pissa.pth";
  if (fs::is_regular_file(pissa)) e.folder_pissa = pissa;
  return e;
}

std::string origin_mismatch(const FineTuneOrigin& saved, const FineTuneOrigin& now, const std::string& base_path,
                            const std::string& pissa_path) {
  if (saved.kind != now.kind)
    return fmt::format("it is a {} fine-tuning run, this config asks for {}", adapter_title(saved.kind), adapter_title(now.kind));
  if (saved.rank != now.rank) return fmt::format("it was trained at rank {}, this config has {}", saved.rank, now.rank);
  if (saved.lora_alpha != now.lora_alpha)
    return fmt::format("it was trained with lora_alpha {}, this config has {}", saved.lora_alpha, now.lora_alpha);
  if (saved.base_digest != now.base_digest)
    return fmt::format("it was started from another base model than load_model {} (weights digest {:#x}, that "
                       "file's is {:#x})", base_path, static_cast<uint64_t>(saved.base_digest),
                       static_cast<uint64_t>(now.base_digest));
  if (saved.pissa_digest != now.pissa_digest)
    return fmt::format("{} is not the PiSSA start this run began from (digest {:#x}, the run's was {:#x})",
                       pissa_path, static_cast<uint64_t>(now.pissa_digest), static_cast<uint64_t>(saved.pissa_digest));
  return "";
}

}  // namespace rwkv7
