// Merging an RWKV-PEFT adapter into its base model, as RWKV-PEFT's merge scripts do
// (merge/merge_state.py, merge/merge.py --type lora, merge/merge_disha.py), so that the result is
// one plain dict of weights (what `rwkv7 merge` writes).
//
// An adapter file (RWKV-PEFT's rwkv-<epoch>.pth) holds only what was trained:
//   state tuning  blocks.<i>.att.time_state [H, N, N]: layer i's initial WKV state S[value][key];
//                 merged = the base plus these keys (the model starts every sequence from them)
//   LoRA          <m>.lora_A [r, in], <m>.lora_B [out, r] beside the base's <m>.weight [out, in]:
//                 y = W x + (alpha / r) B A x, so W' = W + (alpha / r) B A
//   DiSHA (bone)  <m>.disha [r, out]: y = W x + (sum over r-wide blocks of x, zero-padded) disha,
//                 so column c of W gets row c mod r of disha: W'[o, c] = W[o, c] + disha[c % r, o]
//   PiSSA         LoRA's tensors with scale 1, trained from (B0, A0), the top-r part of W, on the
//                 frozen residual W - B0 A0 (init_pissa.pth holds B0, A0): W' = W - B0 A0 + B A
// plus, beside LoRA and DiSHA, base tensors trained as they are (the LayerNorms, `ln` in their
// names), which replace the base's.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "rwkv7/io/checkpoint.h"
#include "rwkv7/peft/peft_options.h"

namespace rwkv7 {

// Which adapter the file holds (state, lora or disha: a PiSSA adapter has LoRA's tensors). Throws CheckpointError naming `path` if it holds none of
// time_state / lora_A, lora_B / disha tensors, or more than one kind.
AdapterKind adapter_kind(const StateDict& adapter, const std::string& path);

// What merge_adapter did (for the command's report line).
struct MergeReport {
  AdapterKind kind = AdapterKind::state;
  int64_t merged = 0;    // base weights that took a LoRA or DiSHA delta
  int64_t replaced = 0;  // base tensors replaced by the adapter's own (ln, or a time_state already there)
  int64_t added = 0;     // keys the base did not have (time_state)
};

// The base with the adapter merged in, the base's key order kept (new time_state keys at the
// end), each base tensor in its own dtype (the arithmetic in float64). `lora_alpha` is needed for
// LoRA (the scale is alpha / r, r = lora_B.size(1)) and ignored otherwise. With `pissa_init`
// (<m>.init_lora_A / init_lora_B, with or without RWKV-PEFT's "model." prefix) a LoRA-shaped
// adapter is PiSSA's: no alpha, and each W also loses its B0 A0. Throws CheckpointError,
// one line naming the file and the tensor, for an adapter that does not fit the base: a module
// the base lacks, a shape that disagrees, a mix of kinds, a missing or non-positive lora_alpha.
StateDict merge_adapter(const StateDict& base, const StateDict& adapter, std::optional<double> lora_alpha,
                        const std::string& base_path, const std::string& adapter_path,
                        MergeReport* report = nullptr, const StateDict* pissa_init = nullptr);

}  // namespace rwkv7
