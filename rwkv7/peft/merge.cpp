#include "rwkv7/peft/merge.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <string>
#include <utility>

namespace rwkv7 {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "blocks.3.att.key.lora_A" less ".lora_A": the module the adapter tensor belongs to
std::string module_of(const std::string& name, const std::string& tail) {
  return name.substr(0, name.size() - tail.size());
}

std::string shape(const at::Tensor& t) { return c10::str(t.sizes()); }

bool is_state(const std::string& n) { return ends_with(n, ".time_state"); }
bool is_lora(const std::string& n) { return ends_with(n, ".lora_A") || ends_with(n, ".lora_B"); }
bool is_disha(const std::string& n) { return ends_with(n, ".disha"); }

}  // namespace

const char* adapter_kind_name(AdapterKind kind) {
  return kind == kState ? "state" : kind == kLora ? "LoRA" : "DiSHA";
}

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
  return !state.empty() ? kState : !lora.empty() ? kLora : kDisha;
}

StateDict merge_adapter(const StateDict& base, const StateDict& adapter, std::optional<double> lora_alpha,
                        const std::string& base_path, const std::string& adapter_path, MergeReport* report,
                        const StateDict* pissa_init) {
  MergeReport rep;
  rep.kind = adapter_kind(adapter, adapter_path);
  if (pissa_init != nullptr && rep.kind != kLora)
    throw CheckpointError(fmt::format("{}: a PiSSA merge takes an adapter of lora_A / lora_B, this one is {}",
                                      adapter_path, adapter_kind_name(rep.kind)));
  // PiSSA's starting B0 A0 of module m (RWKV-PEFT writes its keys under "model.").
  auto pissa_start = [&](const std::string& m, const char* which) -> const at::Tensor& {
    for (const std::string& key : {m + ".init_" + which, "model." + m + ".init_" + which})
      for (const auto& kv : *pissa_init)
        if (kv.first == key) return kv.second;
    throw CheckpointError(fmt::format("the PiSSA init file has no {}.init_{} (the init of another run?)", m, which));
  };
  if (rep.kind == kLora && pissa_init == nullptr) {
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

  // The base's tensors are shared with `out` until replaced; nothing below writes into one.
  StateDict out = base;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < out.size(); ++i) index.emplace(out[i].first, i);
  const std::map<std::string, at::Tensor> given(adapter.begin(), adapter.end());

  // The base tensor `name` that the adapter's `key` acts on.
  auto target = [&](const std::string& key, const std::string& name) -> at::Tensor& {
    const auto it = index.find(name);
    if (it == index.end())
      throw CheckpointError(key == name ? fmt::format("{}: {} is not in {} (an adapter for another model?)",
                                                      adapter_path, key, base_path)
                                        : fmt::format("{}: {} has no {} in {} (an adapter for another model?)",
                                                      adapter_path, key, name, base_path));
    return out[it->second].second;
  };
  auto mismatch = [&](const std::string& key, const at::Tensor& t, const std::string& name, const at::Tensor& w,
                      const std::string& rule) {
    return CheckpointError(fmt::format("{}: {} is {}, {}'s {} is {}: {} (an adapter for another model?)",
                                       adapter_path, key, shape(t), base_path, name, shape(w), rule));
  };

  // First what replaces or joins the base (RWKV-PEFT's scripts copy the adapter's keys into the
  // base dict before merging anything), then the LoRA and DiSHA deltas.
  StateDict added;
  for (const auto& [key, t] : adapter) {
    if (is_lora(key) || is_disha(key)) continue;
    if (is_state(key)) {
      // blocks.<i>.att.time_state: layer i's initial WKV state, one [N, N] per head of r_k [H, N].
      // Kept in the adapter's dtype (the WKV state is float32 in inference).
      const std::string rk_key = module_of(key, ".time_state") + ".r_k";
      const at::Tensor& rk = target(key, rk_key);
      if (rk.dim() != 2 || t.sizes() != at::IntArrayRef({rk.size(0), rk.size(1), rk.size(1)}))
        throw mismatch(key, t, rk_key, rk, "time_state must be [H, N, N] for r_k [H, N]");
      const auto it = index.find(key);
      if (it != index.end()) {
        out[it->second].second = t;
        ++rep.replaced;
      } else {
        added.emplace_back(key, t);
        ++rep.added;
      }
      continue;
    }
    // A base tensor trained as it is (RWKV-PEFT's train_parts: the LayerNorms): replaces the base's.
    at::Tensor& w = target(key, key);
    if (t.sizes() != w.sizes()) throw mismatch(key, t, key, w, "a trained base tensor keeps its shape");
    w = t.to(w.device(), w.scalar_type());
    ++rep.replaced;
  }

  for (const auto& [key, t] : adapter) {
    if (ends_with(key, ".lora_B")) {
      const std::string a_key = module_of(key, ".lora_B") + ".lora_A";
      if (!given.count(a_key))
        throw CheckpointError(fmt::format("{}: {} has no {} beside it", adapter_path, key, a_key));
      continue;  // merged with its lora_A
    }
    if (ends_with(key, ".lora_A")) {
      const std::string m = module_of(key, ".lora_A"), b_key = m + ".lora_B", w_key = m + ".weight";
      const auto b = given.find(b_key);
      if (b == given.end()) throw CheckpointError(fmt::format("{}: {} has no {} beside it", adapter_path, key, b_key));
      const at::Tensor &A = t, &B = b->second;
      at::Tensor& w = target(key, w_key);
      if (w.dim() != 2 || A.dim() != 2 || A.size(0) == 0 || A.size(1) != w.size(1))
        throw mismatch(key, A, w_key, w, "lora_A must be [r, in] for a weight [out, in]");
      if (B.dim() != 2 || B.size(0) != w.size(0) || B.size(1) != A.size(0))
        throw mismatch(b_key, B, w_key, w, fmt::format("lora_B must be [out, r], r = {} as in {}", A.size(0), key));
      // y = W x + (alpha / r) B (A x) for every x, so W' = W + (alpha / r) B A (r: the rank, B's columns);
      // PiSSA: y = (W - B0 A0) x + B A x
      auto product = [&](const at::Tensor& b, const at::Tensor& a) {
        return at::matmul(b.to(w.device(), at::kDouble), a.to(w.device(), at::kDouble));
      };
      at::Tensor delta;
      if (pissa_init != nullptr) {
        const at::Tensor &B0 = pissa_start(m, "lora_B"), &A0 = pissa_start(m, "lora_A");
        if (B0.sizes() != B.sizes() || A0.sizes() != A.sizes())
          throw mismatch(key, A, m + ".init_lora_A", A0, "PiSSA's init must have the adapter's shapes");
        delta = product(B, A) - product(B0, A0);
      } else {
        delta = product(B, A) * (*lora_alpha / double(B.size(1)));
      }
      w = (w.to(at::kDouble) + delta).to(w.scalar_type());
      ++rep.merged;
      continue;
    }
    if (is_disha(key)) {
      const std::string w_key = module_of(key, ".disha") + ".weight";
      at::Tensor& w = target(key, w_key);
      if (t.dim() == 3)
        throw CheckpointError(fmt::format("{}: {} is {}: DiSHA's bat mode ([in / r, r, r]), which is not supported "
                                          "(bone mode's disha is [r, out])", adapter_path, key, shape(t)));
      if (w.dim() != 2 || t.dim() != 2 || t.size(0) == 0 || t.size(1) != w.size(0))
        throw mismatch(key, t, w_key, w, "disha must be [r, out] for a weight [out, in]");
      // The forward adds (sum over blocks b of x[b r + j], x zero-padded to whole blocks) disha[j, o]:
      // input channel c meets row c % r, so W'[o, c] = W[o, c] + disha[c % r, o], i.e. disha^T
      // repeated along the input and cut to its width.
      const int64_t in = w.size(1), r = t.size(0);
      const at::Tensor delta = t.to(w.device(), at::kDouble).t().repeat({1, (in + r - 1) / r}).narrow(1, 0, in);
      w = (w.to(at::kDouble) + delta).to(w.scalar_type());
      ++rep.merged;
    }
  }

  for (auto& kv : added) out.push_back(std::move(kv));
  if (report) *report = rep;
  return out;
}

}  // namespace rwkv7
