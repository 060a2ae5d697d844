#include "rwkv7/train/checkpointer.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "rwkv7/train/train_state.h"

namespace rwkv7 {

Checkpointer::Checkpointer(const RunDir& dir, StateSharding sharding, bool rank0, int64_t precision_bits,
                           Agreement agreed)
    : dir_(dir), sharding_(sharding), rank0_(rank0), precision_bits_(precision_bits), agreed_(std::move(agreed)) {}

void Checkpointer::add_part(std::function<StateDict()> state_dict) { parts_.push_back(std::move(state_dict)); }

void Checkpointer::save(const std::string& checkpoint, const StateDict& weights, int64_t digest,
                        bool with_state) const {
  // rank 0 writes the state; under ZeRO every rank writes its shard
  const bool writes_state = with_state && (rank0_ || sharding_.sharded);
  StateDict state;
  if (writes_state) {
    for (const auto& part : parts_)
      for (auto& kv : part()) state.push_back(std::move(kv));
    state.emplace_back("run.precision_bits", at::tensor(precision_bits_));
    state.emplace_back("run.weights_digest", at::tensor(digest));
  }
  agreed_([&] { if (writes_state) dir_.remove_state(checkpoint, sharding_, /*other_layouts=*/rank0_); });
  agreed_([&] { if (rank0_) dir_.save_weights(checkpoint, weights); });
  agreed_([&] { if (writes_state) dir_.save_state(checkpoint, state, sharding_); });
}

StateDict Checkpointer::read_state(const std::string& checkpoint, std::string* why_not, std::string* saved_as) const {
  try {
    return dir_.read_state(checkpoint, sharding_, why_not, saved_as);
  } catch (const CheckpointError& e) {
    throw CheckpointError(std::string(e.what()) + ". Resume from the weights alone with exact_resume: 0, or remove it");
  }
}

std::string Checkpointer::pairing_fault(const StateDict& state, const StateDict& weights,
                                        const std::string& checkpoint, bool* unpaired) const {
  *unpaired = !has_tensor(state, "run.precision_bits") || !has_tensor(state, "run.weights_digest");
  if (*unpaired) return "";
  const int64_t bits = find_tensor(state, "run.precision_bits", "").item<int64_t>();
  if (bits != precision_bits_)
    return fmt::format("it was saved by a {} run, this run is {}", bits == 16 ? "bf16" : "fp32",
                       precision_bits_ == 16 ? "bf16" : "fp32");
  if (find_tensor(state, "run.weights_digest", "").item<int64_t>() != weights_digest(weights))
    return "it was saved beside another checkpoint than " + checkpoint + " (another run, or an older save)";
  return "";
}

}  // namespace rwkv7
