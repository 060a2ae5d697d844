#include "rwkv7/peft/merge.h"

#include "rwkv7/model/adapter_math.h"
#include "rwkv7/peft/peft_names.h"
#include "rwkv7/peft/pissa_start.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>

namespace rwkv7 {

namespace {

// "blocks.3.att.key.lora_A" less ".lora_A": the module the adapter tensor belongs to
std::string module_of(const std::string& name, const std::string& tail) {
  return name.substr(0, name.size() - tail.size());
}

std::string shape(const at::Tensor& t) { return c10::str(t.sizes()); }

using peft_names::ends_with;
using peft_names::is_disha;
using peft_names::is_lora;
bool is_state(const std::string& n) { return peft_names::is_time_state(n); }

}  // namespace

AdapterKind adapter_kind(const StateDict& adapter, const std::string& path) {
  std::string state, lora, disha;  // the first tensor of each kind, for messages
  for (const auto& kv : adapter) {
    if (state.empty() && is_state(kv.first)) state = kv.first;
    if (lora.empty() && is_lora(kv.first)) lora = kv.first;
    if (disha.empty() && is_disha(kv.first)) disha = kv.first;
  }
  const int kinds = int(!state.empty()) + int(!lora.empty()) + int(!disha.empty());
  if (kinds == 0)
    throw CheckpointError(path + ": no time_state, lora_A/lora_B or disha tensors (not an RWKV-PEFT adapter, the "
                                 "rwkv-<n>.pth of a state, LoRA or DiSHA run)");
  if (kinds > 1) {
    std::string found;
    for (const std::string* n : {&state, &lora, &disha})
      if (!n->empty()) found += (found.empty() ? "" : " and ") + *n;
    throw CheckpointError(path + ": holds adapters of more than one kind (" + found + "); one adapter per file");
  }
  return !state.empty() ? AdapterKind::state : !lora.empty() ? AdapterKind::lora : AdapterKind::disha;
}

namespace {

// PiSSA takes a LoRA adapter; LoRA without PiSSA needs the positive lora_alpha it was trained with.
void check_merge_args(const StateDict& adapter, AdapterKind kind, std::optional<double> lora_alpha,
                      const std::string& adapter_path, const StateDict* pissa_init) {
  if (pissa_init != nullptr && kind != AdapterKind::lora)
    throw CheckpointError(fmt::format("{}: a PiSSA merge takes an adapter of lora_A / lora_B, this one is {}",
                                      adapter_path, adapter_title(kind)));
  if (kind != AdapterKind::lora || pissa_init != nullptr) return;
  std::string first;
  for (const auto& kv : adapter)
    if (first.empty() && is_lora(kv.first)) first = kv.first;
  if (!lora_alpha)
    throw CheckpointError(fmt::format(
        "{}: {} is LoRA, whose update is scaled by lora_alpha / r: give the lora_alpha it was trained with "
        "(rwkv7 merge --lora-alpha; RWKV-PEFT's merge script assumes 16)", adapter_path, first));
  if (!(*lora_alpha > 0) || !std::isfinite(*lora_alpha))
    throw CheckpointError(fmt::format("{}: {}: lora_alpha must be a positive number, got {}", adapter_path, first,
                                      *lora_alpha));
}

// What the merge steps share. `out` starts as the base: the base's tensors are shared with `out`
// until replaced; nothing below writes into one.
struct MergeState {
  MergeState(const StateDict& base, const StateDict& adapter, std::optional<double> lora_alpha_,
             const std::string& base_path_, const std::string& adapter_path_, const StateDict* pissa_init_)
      : lora_alpha(lora_alpha_), base_path(base_path_), adapter_path(adapter_path_), pissa_init(pissa_init_),
        out(base), given(adapter.begin(), adapter.end()) {
    for (size_t i = 0; i < out.size(); ++i) index.emplace(out[i].first, i);
  }

  // The base tensor `name` that the adapter's `key` acts on.
  at::Tensor& target(const std::string& key, const std::string& name) {
    const auto it = index.find(name);
    if (it == index.end())
      throw CheckpointError(key == name ? fmt::format("{}: {} is not in {} (an adapter for another model?)",
                                                      adapter_path, key, base_path)
                                        : fmt::format("{}: {} has no {} in {} (an adapter for another model?)",
                                                      adapter_path, key, name, base_path));
    return out[it->second].second;
  }

  CheckpointError mismatch(const std::string& key, const at::Tensor& t, const std::string& name, const at::Tensor& w,
                           const std::string& rule) const {
    return CheckpointError(fmt::format("{}: {} is {}, {}'s {} is {}: {} (an adapter for another model?)",
                                       adapter_path, key, shape(t), base_path, name, shape(w), rule));
  }

  const std::optional<double> lora_alpha;
  const std::string& base_path;
  const std::string& adapter_path;
  const StateDict* const pissa_init;
  StateDict out;
  const std::map<std::string, at::Tensor> given;
  std::map<std::string, size_t> index;
  MergeReport rep;
};

// What replaces or joins the base: time_state keys, and base tensors trained as they are.
// Replaces in `s.out`; returns the keys the base lacks, in the adapter's order.
StateDict copy_plain_tensors(MergeState& s, const StateDict& adapter) {
  StateDict added;
  for (const auto& [key, t] : adapter) {
    if (is_lora(key) || is_disha(key)) continue;
    if (is_state(key)) {
      // blocks.<i>.att.time_state: layer i's initial WKV state, one [N, N] per head of r_k [H, N].
      // Kept in the adapter's dtype (the WKV state is float32 in inference).
      const std::string rk_key = module_of(key, ".time_state") + ".r_k";
      const at::Tensor& rk = s.target(key, rk_key);
      if (rk.dim() != 2 || t.sizes() != at::IntArrayRef({rk.size(0), rk.size(1), rk.size(1)}))
        throw s.mismatch(key, t, rk_key, rk, "time_state must be [H, N, N] for r_k [H, N]");
      const auto it = s.index.find(key);
      if (it != s.index.end()) {
        s.out[it->second].second = t;
        ++s.rep.replaced;
      } else {
        added.emplace_back(key, t);
        ++s.rep.added;
      }
      continue;
    }
    // A base tensor trained as it is (RWKV-PEFT's train_parts: the LayerNorms): replaces the base's.
    at::Tensor& w = s.target(key, key);
    if (t.sizes() != w.sizes()) throw s.mismatch(key, t, key, w, "a trained base tensor keeps its shape");
    w = t.to(w.device(), w.scalar_type());
    ++s.rep.replaced;
  }
  return added;
}

// The float64 delta of module m's weight w, from the adapter's A = <m>.lora_A (`key`) and B.
at::Tensor lora_delta(const MergeState& s, const std::string& m, const std::string& key, const at::Tensor& A,
                      const at::Tensor& B, const at::Tensor& w) {
  // y = W x + (alpha / r) B (A x) for every x, so W' = W + (alpha / r) B A (r: the rank, B's columns);
  // PiSSA: y = (W - B0 A0) x + B A x
  const auto on_w = [&w](const at::Tensor& t) { return t.to(w.device()); };
  if (s.pissa_init != nullptr) {
    const at::Tensor &B0 = pissa_start_tensor(*s.pissa_init, "the PiSSA init file", m, "lora_B"),
                     &A0 = pissa_start_tensor(*s.pissa_init, "the PiSSA init file", m, "lora_A");
    if (B0.sizes() != B.sizes() || A0.sizes() != A.sizes())
      throw s.mismatch(key, A, m + ".init_lora_A", A0, "PiSSA's init must have the adapter's shapes");
    return adapter_math::lora_delta(on_w(A), on_w(B), 1.0) - adapter_math::lora_delta(on_w(A0), on_w(B0), 1.0);
  }
  return adapter_math::lora_delta(on_w(A), on_w(B), *s.lora_alpha / double(B.size(1)));
}

// <m>.lora_A (`key`, A) with its <m>.lora_B into <m>.weight.
void merge_lora(MergeState& s, const std::string& key, const at::Tensor& A) {
  const std::string m = module_of(key, ".lora_A"), b_key = m + ".lora_B", w_key = m + ".weight";
  const auto b = s.given.find(b_key);
  if (b == s.given.end())
    throw CheckpointError(fmt::format("{}: {} has no {} beside it", s.adapter_path, key, b_key));
  const at::Tensor& B = b->second;
  at::Tensor& w = s.target(key, w_key);
  if (w.dim() != 2 || A.dim() != 2 || A.size(0) == 0 || A.size(1) != w.size(1))
    throw s.mismatch(key, A, w_key, w, "lora_A must be [r, in] for a weight [out, in]");
  if (B.dim() != 2 || B.size(0) != w.size(0) || B.size(1) != A.size(0))
    throw s.mismatch(b_key, B, w_key, w, fmt::format("lora_B must be [out, r], r = {} as in {}", A.size(0), key));
  const at::Tensor delta = lora_delta(s, m, key, A, B, w);
  w = (w.to(at::kDouble) + delta).to(w.scalar_type());
  ++s.rep.merged;
}

// <m>.disha (`key`, t) into <m>.weight.
void merge_disha(MergeState& s, const std::string& key, const at::Tensor& t) {
  const std::string w_key = module_of(key, ".disha") + ".weight";
  at::Tensor& w = s.target(key, w_key);
  if (t.dim() == 3)
    throw CheckpointError(fmt::format("{}: {} is {}: DiSHA's bat mode ([in / r, r, r]), which is not supported "
                                      "(bone mode's disha is [r, out])", s.adapter_path, key, shape(t)));
  if (w.dim() != 2 || t.dim() != 2 || t.size(0) == 0 || t.size(1) != w.size(0))
    throw s.mismatch(key, t, w_key, w, "disha must be [r, out] for a weight [out, in]");
  const at::Tensor delta = adapter_math::disha_delta(t.to(w.device()), w.size(1));
  w = (w.to(at::kDouble) + delta).to(w.scalar_type());
  ++s.rep.merged;
}

// "blocks.<i>.<rest>" -> i; -1 for other names
int64_t block_of(const std::string& name) {
  if (name.rfind("blocks.", 0) != 0) return -1;
  const size_t dot = name.find('.', 7);
  const std::string digits = name.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

// An adapter acts on every layer of the model it was trained on; one that leaves layers of this
// base untouched was made for a model of fewer layers.
void check_covers_every_layer(const StateDict& base, const StateDict& adapter, const std::string& base_path,
                              const std::string& adapter_path) {
  std::set<int64_t> base_layers, adapted;
  for (const auto& kv : base) base_layers.insert(block_of(kv.first));
  for (const auto& kv : adapter)
    if (is_state(kv.first) || is_lora(kv.first) || is_disha(kv.first)) adapted.insert(block_of(kv.first));
  base_layers.erase(-1);
  for (int64_t layer : base_layers)
    if (!adapted.count(layer))
      throw CheckpointError(fmt::format("{}: adapts {} of the {} layers of {}, not layer {}: an adapter of a model "
                                        "with fewer layers?", adapter_path, adapted.size(), base_layers.size(),
                                        base_path, layer));
}

}  // namespace

StateDict merge_adapter(const StateDict& base, const StateDict& adapter, std::optional<double> lora_alpha,
                        const std::string& base_path, const std::string& adapter_path, MergeReport* report,
                        const StateDict* pissa_init) {
  const AdapterKind kind = adapter_kind(adapter, adapter_path);
  check_merge_args(adapter, kind, lora_alpha, adapter_path, pissa_init);
  check_covers_every_layer(base, adapter, base_path, adapter_path);
  MergeState s(base, adapter, lora_alpha, base_path, adapter_path, pissa_init);
  s.rep.kind = kind;

  // First what replaces or joins the base (RWKV-PEFT's scripts copy the adapter's keys into the
  // base dict before merging anything), then the LoRA and DiSHA deltas.
  StateDict added = copy_plain_tensors(s, adapter);
  for (const auto& [key, t] : adapter) {
    if (ends_with(key, ".lora_B")) {
      const std::string a_key = module_of(key, ".lora_B") + ".lora_A";
      if (!s.given.count(a_key))
        throw CheckpointError(fmt::format("{}: {} has no {} beside it", adapter_path, key, a_key));
      continue;  // merged with its lora_A
    }
    if (ends_with(key, ".lora_A"))
      merge_lora(s, key, t);
    else if (is_disha(key))
      merge_disha(s, key, t);
  }

  for (auto& kv : added) s.out.push_back(std::move(kv));
  if (report) *report = s.rep;
  return std::move(s.out);
}

}  // namespace rwkv7
