#include "rwkv7/train/config.h"

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <type_traits>

namespace rwkv7 {

namespace {

// One entry per key: how to read it into the struct, how to print it, and what it means.
struct Key {
  std::string name, meaning;
  bool is_list = false;  // a YAML sequence (or "a,b" on the command line)
  std::function<void(TrainConfig&, const std::string&)> set;
  std::function<std::string(const TrainConfig&)> get;
  // When the key means something: a key given for a run it does not apply to is refused
  // (it would be ignored without a word). Empty: always.
  std::function<bool(const TrainConfig&)> applies;
  std::string applies_when;  // e.g. "peft: lora", for the refusal

  Key only_when(std::function<bool(const TrainConfig&)> rule, std::string when) && {
    applies = std::move(rule);
    applies_when = std::move(when);
    return std::move(*this);
  }
};

template <typename T>
T parse_value(const std::string& key, const std::string& text);

template <>
int64_t parse_value<int64_t>(const std::string& key, const std::string& text) {
  // digits, a sign, and 1e6 / 4.0 forms; nothing else (an empty value is no 0, "0x10" no 16)
  if (text.empty() || text.find_first_not_of("+-0123456789.eE") != std::string::npos)
    throw ConfigError("key '" + key + "': expected an integer, got '" + text + "'");
  size_t used = 0;
  double as_double = 0;
  try {
    const long long v = std::stoll(text, &used);
    if (used == text.size()) return v;
    as_double = std::stod(text, &used);  // accept 1e6 or 4.0 when it is a whole number
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == text.size() && std::floor(as_double) == as_double && std::fabs(as_double) < 9e18)
    return static_cast<int64_t>(as_double);
  throw ConfigError("key '" + key + "': expected an integer, got '" + text + "'");
}

template <>
double parse_value<double>(const std::string& key, const std::string& text) {
  size_t used = 0;
  try {
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw ConfigError("key '" + key + "': expected a number, got '" + text + "'");
}

template <>
std::string parse_value<std::string>(const std::string&, const std::string& text) {
  return text;
}

template <>
std::vector<std::string> parse_value<std::vector<std::string>>(const std::string&, const std::string& text) {
  // "a,b", "a, b" and a YAML list alike; blanks around a name are not part of it
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string item; std::getline(s, item, ',');) {
    const size_t first = item.find_first_not_of(" \t"), last = item.find_last_not_of(" \t");
    if (first != std::string::npos) out.push_back(item.substr(first, last - first + 1));
  }
  return out;
}

std::string show(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}
std::string show(int64_t v) { return std::to_string(v); }
std::string show(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}
std::string show(const std::string& v) { return v; }

template <typename T>
Key key(const std::string& name, T TrainConfig::*field, const std::string& meaning) {
  return {name, meaning, std::is_same_v<T, std::vector<std::string>>,
          [name, field](TrainConfig& c, const std::string& text) { c.*field = parse_value<T>(name, text); },
          [field](const TrainConfig& c) { return show(c.*field); }, {}, ""};
}

bool pad(const TrainConfig& c) { return c.dataload == "pad"; }
bool lora(const TrainConfig& c) { return c.peft == "lora"; }
bool disha(const TrainConfig& c) { return c.peft == "disha"; }
bool pissa(const TrainConfig& c) { return c.peft == "pissa"; }
bool adapter(const TrainConfig& c) { return c.peft != "none"; }

const std::vector<Key>& keys() {
  static const std::vector<Key> k = {
      key("proj_dir", &TrainConfig::proj_dir, "output folder: checkpoints, train_log.txt, metrics.jsonl"),
      key("data_file", &TrainConfig::data_file, "binidx prefix of the training data (.bin/.idx)"),
      key("data_type", &TrainConfig::data_type, "binidx (the only one)"),
      key("vocab_size", &TrainConfig::vocab_size, "vocabulary size (256 for bytes, 65536 for the world tokenizer)"),
      key("ctx_len", &TrainConfig::ctx_len, "tokens per sample"),
      key("n_layer", &TrainConfig::n_layer, "layers"),
      key("n_embd", &TrainConfig::n_embd, "model width C"),
      key("head_size", &TrainConfig::head_size, "WKV head size N (H = C / N heads)"),
      key("dim_att", &TrainConfig::dim_att, "attention width; 0 means n_embd (RWKV-7 needs them equal)"),
      key("d_decay_lora", &TrainConfig::d_decay_lora, "LoRA width of the decay w (0: max(32, round(2.5 sqrt(C)/32)*32))"),
      key("d_aaa_lora", &TrainConfig::d_aaa_lora, "LoRA width of the in-context rate a (0: the seed's formula, 2.5)"),
      key("d_mv_lora", &TrainConfig::d_mv_lora, "LoRA width of the value residual v (0: the seed's formula, 1.7)"),
      key("d_gate_lora", &TrainConfig::d_gate_lora, "LoRA width of the gate g (0: the seed's formula, 5)"),
      key("micro_bsz", &TrainConfig::micro_bsz, "samples per step per process"),
      key("lr_init", &TrainConfig::lr_init, "learning rate after warmup"),
      key("lr_final", &TrainConfig::lr_final, "learning rate at the token budget (cosine decay)"),
      key("warmup_steps", &TrainConfig::warmup_steps, "linear warmup from 1% (-1: none; 10 on resume)"),
      key("beta1", &TrainConfig::beta1, "Adam beta1"),
      key("beta2", &TrainConfig::beta2, "Adam beta2"),
      key("adam_eps", &TrainConfig::adam_eps, "Adam epsilon"),
      key("weight_decay", &TrainConfig::weight_decay, "decoupled weight decay of the matrices"),
      key("grad_clip", &TrainConfig::grad_clip, "max global gradient L2 norm"),
      key("my_exit_tokens", &TrainConfig::my_exit_tokens, "token budget: the run saves rwkv-final.pth and stops there"),
      key("magic_prime", &TrainConfig::magic_prime, "sampler prime: prime, 2 mod 3, just under tokens / ctx_len; 0: the seed's rule for the data and ctx_len (the value used is printed)"),
      key("epoch_save", &TrainConfig::epoch_save, "save rwkv-<epoch>.pth every this many mini-epochs (0: never)"),
      key("epoch_count", &TrainConfig::epoch_count, "mini-epochs of a run counted in mini-epochs (dataload pad, lr_schedule cos); otherwise ignored like the seed: magic_prime // epoch_samples"),
      key("epoch_begin", &TrainConfig::epoch_begin, "first mini-epoch number (set by resume)"),
      key("train_stage", &TrainConfig::train_stage, "0: fresh or load_model; >= 2: resume from the newest rwkv-<n>.pth"),
      key("load_model", &TrainConfig::load_model, "checkpoint to start from (train_stage 0)"),
      key("random_seed", &TrainConfig::random_seed, "seed for the initial weights (-1: from the clock)"),
      key("precision", &TrainConfig::precision, "fp32 or bf16 (bf16 compute, fp32 master weights)"),
      key("grad_cp", &TrainConfig::grad_cp, "1: recompute each block in the backward pass (less memory)"),
      key("device", &TrainConfig::device, "cpu, cuda or auto"),
      key("epoch_samples", &TrainConfig::epoch_samples, "samples per mini-epoch (the seed: 40320)"),
      key("threads", &TrainConfig::threads, "CPU threads (0: LibTorch's default)"),
      key("epoch_limit", &TrainConfig::epoch_limit, "stop after this many mini-epochs of this run (0: no limit)"),
      key("overwrite", &TrainConfig::overwrite, "1: a fresh start (train_stage 0) or prepare in a proj_dir that holds another run's checkpoints removes them; 0: refuse"),
      key("exact_resume", &TrainConfig::exact_resume, "1: resume from rwkv-<n>.state.pth (optimizer, position) when present; 0: weights only, as the seed"),
      key("max_bad_steps", &TrainConfig::max_bad_steps, "stop after this many steps in a row whose loss or gradient is not finite"),
      key("devices", &TrainConfig::devices, "data-parallel processes (taken from WORLD_SIZE when set)"),
      key("zero_stage", &TrainConfig::zero_stage, "1: shard the optimizer state across processes (ZeRO stage 1)"),
      key("dist_timeout", &TrainConfig::dist_timeout, "seconds a collective waits for the other processes before failing"),
      key("val_data_file", &TrainConfig::val_data_file, "binidx prefix of held-out data (empty: no validation)"),
      key("val_every", &TrainConfig::val_every, "validate every this many steps (0: at each mini-epoch end)"),
      key("val_samples", &TrainConfig::val_samples, "size of the fixed held-out set, in ctx_len windows"),
      key("fused_ops", &TrainConfig::fused_ops, "1: the step's elementwise work through the fused ops (ops/schema.cpp); 0: the composite ATen code"),
      key("head_chunk", &TrainConfig::head_chunk, "> 0: head, cross-entropy and L2Wrap in chunks of this many rows, never the full logits (less memory); 0: off"),
      key("peak_tflops", &TrainConfig::peak_tflops, "peak TFLOP/s of one device for the MFU figure; 0: the default for known GPUs (H100, H200, A100, RTX 4090, bf16 dense)"),
      key("train_type", &TrainConfig::train_type, "fine-tuning: state trains each layer's initial WKV state (time_state) and nothing else; none"),
      key("peft", &TrainConfig::peft, "fine-tuning: none, lora, disha or pissa (adapters on att receptance/key/value/output, ffn key/value)"),
      key("lora_r", &TrainConfig::lora_r, "LoRA rank r")
          .only_when(lora, "peft: lora"),
      key("lora_alpha", &TrainConfig::lora_alpha, "LoRA alpha: the update is scaled by alpha / r")
          .only_when(lora, "peft: lora"),
      key("lora_dropout", &TrainConfig::lora_dropout, "dropout on the LoRA input (training only)")
          .only_when(lora, "peft: lora"),
      key("lora_load", &TrainConfig::lora_load, "adapter file to start from (an rwkv-<n>.pth of a fine-tuning run); empty: a fresh adapter")
          .only_when(adapter, "peft: lora, disha or pissa"),
      key("disha_mode", &TrainConfig::disha_mode, "DiSHA mode: bone")
          .only_when(disha, "peft: disha"),
      key("disha_r", &TrainConfig::disha_r, "DiSHA block size r (divides every adapted layer's input width)")
          .only_when(disha, "peft: disha"),
      key("pissa_r", &TrainConfig::pissa_r, "PiSSA rank r")
          .only_when(pissa, "peft: pissa"),
      key("svd_niter", &TrainConfig::svd_niter, "PiSSA: subspace iterations of the randomized SVD")
          .only_when(pissa, "peft: pissa"),
      key("pissa_init", &TrainConfig::pissa_init, "PiSSA with lora_load: the init_pissa.pth of the run that made the adapter (its frozen residual W - B0 A0)")
          .only_when(pissa, "peft: pissa"),
      key("train_parts", &TrainConfig::train_parts, "with peft: base tensors also trained, by a part of their names (ln: the LayerNorms); each must match a tensor")
          .only_when(adapter, "peft: lora, disha or pissa"),
      key("dataload", &TrainConfig::dataload, "magic_prime: the seed's sampler; pad: sample i = ctx_len+1 tokens from the start of document i, targets past its end ignored"),
      key("data_shuffle", &TrainConfig::data_shuffle, "dataload pad: 1 visits the documents in a seeded random order, 0 in file order")
          .only_when(pad, "dataload: pad"),
      key("epoch_steps", &TrainConfig::epoch_steps_key, "steps per mini-epoch with dataload pad (0: epoch_samples / (micro_bsz x devices))"),
      key("lr_schedule", &TrainConfig::lr_schedule, "seed: the seed's schedule to the token budget; cos: lr_final + (lr_init - lr_final)(1 + cos(pi step / total))/2 over epoch_count mini-epochs, no warmup"),
  };
  return k;
}

const Key* find_key(const std::string& name) {
  for (const auto& k : keys())
    if (k.name == name) return &k;
  return nullptr;
}

[[noreturn]] void unknown_key(const std::string& name, const std::string& source) {
  throw ConfigError(source + ": unknown key '" + name + "' (rwkv7 train --help lists the keys)");
}

void need(bool ok, const std::string& key, const std::string& what) {
  if (!ok) throw ConfigError("key '" + key + "': " + what);
}

// a * b * ... when it fits in int64 (a token or step count), else -1
int64_t product_or_overflow(std::initializer_list<int64_t> factors) {
  int64_t p = 1;
  for (int64_t f : factors)
    if (f < 0 || __builtin_mul_overflow(p, f, &p)) return -1;
  return p;
}

// Counts the run computes from its keys (tokens = steps x samples x ctx_len) must fit in 64 bits,
// or the loop's arithmetic wraps (a run of 0 steps that says it finished).
void check_counts_fit(const TrainConfig& c) {
  const int64_t epochs = c.epoch_begin + std::max<int64_t>(c.epoch_count, 1);
  if (product_or_overflow({epochs, c.epoch_steps(), c.real_bsz(), c.ctx_len}) < 0)
    throw ConfigError(fmt::format(
        "key '{}': {} steps per mini-epoch x {} mini-epochs x {} samples x ctx_len {} is more tokens than a "
        "64-bit count holds", c.epoch_steps_key > 0 ? "epoch_steps" : "epoch_samples", c.epoch_steps(), epochs,
        c.real_bsz(), c.ctx_len));
  if (product_or_overflow({c.magic_prime, c.ctx_len}) < 0)
    throw ConfigError(fmt::format("key 'magic_prime': {} x ctx_len {} is more tokens than a 64-bit count holds",
                                  c.magic_prime, c.ctx_len));
}

// A key given for a run it does not apply to would be ignored without a word: refuse it.
void check_given_keys_apply(const TrainConfig& c) {
  for (const Key& k : keys())
    if (k.applies && c.given.count(k.name) && !k.applies(c))
      throw ConfigError(fmt::format("key '{}': applies to runs with {}; this run has peft: {}, dataload: {} "
                                    "(remove the key, or set what it needs)", k.name, k.applies_when, c.peft,
                                    c.dataload));
}

}  // namespace

void TrainConfig::validate() const {
  need(!proj_dir.empty(), "proj_dir", "must not be empty");
  need(data_type == "binidx", "data_type", "must be binidx, got '" + data_type + "'");
  need(vocab_size > 0, "vocab_size", "must be > 0, got " + std::to_string(vocab_size));
  need(ctx_len > 0, "ctx_len", "must be > 0, got " + std::to_string(ctx_len));
  need(n_layer > 0, "n_layer", "must be > 0, got " + std::to_string(n_layer));
  need(n_embd > 0, "n_embd", "must be > 0, got " + std::to_string(n_embd));
  need(head_size > 0, "head_size", "must be > 0, got " + std::to_string(head_size));
  need(n_embd % head_size == 0, "n_embd",
       std::to_string(n_embd) + " is not a multiple of head_size " + std::to_string(head_size));
  need(dim_att == 0 || dim_att == n_embd, "dim_att", "RWKV-7 needs dim_att == n_embd (or 0)");
  for (const auto& [v, k] : {std::pair<int64_t, const char*>{d_decay_lora, "d_decay_lora"}, {d_aaa_lora, "d_aaa_lora"},
                              {d_mv_lora, "d_mv_lora"}, {d_gate_lora, "d_gate_lora"}})
    need(v >= 0, k, "must be >= 0 (0: the seed's formula)");
  need(micro_bsz > 0, "micro_bsz", "must be > 0, got " + std::to_string(micro_bsz));
  need(lr_init > 0, "lr_init", "must be > 0, got " + show(lr_init));
  need(lr_final > 0, "lr_final", "must be > 0, got " + show(lr_final));
  need(warmup_steps >= -1, "warmup_steps", "must be >= -1");
  need(beta1 >= 0 && beta1 < 1, "beta1", "must be in [0, 1)");
  need(beta2 >= 0 && beta2 < 1, "beta2", "must be in [0, 1)");
  need(adam_eps > 0, "adam_eps", "must be > 0");
  need(weight_decay >= 0, "weight_decay", "must be >= 0");
  need(grad_clip > 0, "grad_clip", "must be > 0");
  need(dataload == "magic_prime" || dataload == "pad", "dataload", "must be magic_prime or pad, got '" + dataload + "'");
  need(lr_schedule == "seed" || lr_schedule == "cos", "lr_schedule", "must be seed or cos, got '" + lr_schedule + "'");
  need(data_shuffle == 0 || data_shuffle == 1, "data_shuffle", "must be 0 or 1");
  need(epoch_steps_key >= 0, "epoch_steps", "must be >= 0 (0: epoch_samples / (micro_bsz x devices))");
  need(epoch_steps_key == 0 || dataload == "pad", "epoch_steps",
       "sets the mini-epoch of dataload: pad; the seed's sampler takes epoch_samples");
  if (counts_epochs()) {
    need(epoch_count > 0, "epoch_count", "must be > 0 with dataload: pad or lr_schedule: cos (the run's length in mini-epochs)");
  } else {
    need(my_exit_tokens > 0, "my_exit_tokens", "must be > 0 (the run's token budget)");
  }
  need(magic_prime >= 0, "magic_prime", "must be >= 0 (0: the seed's rule for the data and ctx_len)");
  validate_fine_tuning();
  need(epoch_save >= 0, "epoch_save", "must be >= 0");
  need(epoch_begin >= 0, "epoch_begin", "must be >= 0");
  need(train_stage == 0 || train_stage >= 2, "train_stage", "must be 0 or >= 2 (rwkv7 prepare is stage 1)");
  need(random_seed >= -1, "random_seed", "must be >= -1");
  need(precision == "fp32" || precision == "bf16", "precision", "must be fp32 or bf16, got '" + precision + "'");
  need(grad_cp == 0 || grad_cp == 1, "grad_cp", "must be 0 or 1");
  need(fused_ops == 0 || fused_ops == 1, "fused_ops", "must be 0 or 1");
  need(head_chunk >= 0, "head_chunk", "must be >= 0 (0: off)");
  need(peak_tflops >= 0, "peak_tflops", "must be >= 0 (0: the known GPUs' defaults)");
  need(device == "cpu" || device == "cuda" || device == "auto", "device", "must be cpu, cuda or auto");
  need(epoch_samples > 0, "epoch_samples", "must be > 0");
  need(devices >= 1, "devices", "must be >= 1");
  need(zero_stage == 0 || zero_stage == 1, "zero_stage", "must be 0 or 1");
  need(dist_timeout >= 1, "dist_timeout", "must be >= 1 (seconds)");
  need(epoch_samples % real_bsz() == 0, "epoch_samples",
       std::to_string(epoch_samples) + " is not a multiple of micro_bsz x devices = " +
           std::to_string(real_bsz()));
  need(threads >= 0, "threads", "must be >= 0");
  need(epoch_limit >= 0, "epoch_limit", "must be >= 0");
  need(val_every >= 0, "val_every", "must be >= 0");
  need(exact_resume == 0 || exact_resume == 1, "exact_resume", "must be 0 or 1");
  need(overwrite == 0 || overwrite == 1, "overwrite", "must be 0 or 1");
  need(max_bad_steps >= 1, "max_bad_steps", "must be >= 1");
  need(val_samples >= 1, "val_samples", "must be >= 1");
  check_counts_fit(*this);
  check_given_keys_apply(*this);
}

// RWKV-PEFT's keys and what they need of the rest.
void TrainConfig::validate_fine_tuning() const {
  need(head_chunk == 0 || dataload != "pad", "head_chunk",
       "the chunked head's loss takes no ignored targets, which dataload: pad makes; use head_chunk: 0");
  need(train_type == "none" || train_type == "state", "train_type", "must be none or state, got '" + train_type + "'");
  need(peft == "none" || peft == "lora" || peft == "disha" || peft == "pissa", "peft",
       "must be none, lora, disha or pissa, got '" + peft + "'");
  need(train_type == "none" || peft == "none", "peft", "state tuning (train_type: state) trains the state alone; set peft: none");
  need(lora_r > 0, "lora_r", "must be > 0, got " + std::to_string(lora_r));
  need(lora_alpha > 0, "lora_alpha", "must be > 0, got " + show(lora_alpha));
  need(lora_dropout >= 0 && lora_dropout < 1, "lora_dropout", "must be in [0, 1), got " + show(lora_dropout));
  need(disha_mode == "bone", "disha_mode", "must be bone (the DiSHA mode RWKV-PEFT trains for RWKV-7), got '" + disha_mode + "'");
  need(disha_r > 0, "disha_r", "must be > 0, got " + std::to_string(disha_r));
  need(pissa_r > 0, "pissa_r", "must be > 0, got " + std::to_string(pissa_r));
  need(svd_niter >= 0, "svd_niter", "must be >= 0");
  need(lora_load.empty() || peft != "none", "lora_load", "an adapter to start from needs peft: lora, disha or pissa");
  need(pissa_init.empty() || (peft == "pissa" && !lora_load.empty()), "pissa_init",
       "is the init of a PiSSA adapter given with lora_load (peft: pissa)");
  if (fine_tuning()) {
    need(zero_stage == 0, "zero_stage", "fine-tuning keeps its few trained tensors unsharded; use zero_stage: 0");
  }
}

namespace {
TrainConfig parse_yaml_config(const std::string& text, const std::string& source,
                              const std::vector<std::string>& overrides);
}  // namespace

TrainConfig parse_train_config(const std::string& text, const std::string& source,
                               const std::vector<std::string>& overrides) {
  try {
    return parse_yaml_config(text, source, overrides);
  } catch (const YAML::Exception& e) {  // any YAML fault: syntax, a key that is not a string, ...
    throw ConfigError(source + ": YAML error at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

namespace {
TrainConfig parse_yaml_config(const std::string& text, const std::string& source,
                              const std::vector<std::string>& overrides) {
  TrainConfig c;
  const YAML::Node root = YAML::Load(text);
  if (root && !root.IsNull()) {
    if (!root.IsMap()) throw ConfigError(source + ": expected a mapping of key: value");
    std::set<std::string> seen;  // yaml-cpp keeps both of a duplicated key; we refuse it
    for (const auto& kv : root) {
      const std::string name = kv.first.as<std::string>();
      const Key* k = find_key(name);
      if (!k) unknown_key(name, source);
      if (!seen.insert(name).second)
        throw ConfigError(source + ": key '" + name + "' appears twice (line " +
                          std::to_string(kv.first.Mark().line + 1) + ")");
      std::string text;
      if (k->is_list && kv.second.IsSequence()) {
        for (const auto& item : kv.second) {
          if (!item.IsScalar()) throw ConfigError(source + ": key '" + name + "': expected a list of names");
          text += (text.empty() ? "" : ",") + item.as<std::string>();
        }
      } else if (!kv.second.IsScalar() && !kv.second.IsNull()) {
        throw ConfigError(source + ": key '" + name + "': expected a single value");
      } else {
        text = kv.second.IsNull() ? "" : kv.second.as<std::string>();
      }
      c.given.insert(name);
      try {
        k->set(c, text);
      } catch (const ConfigError& e) {
        throw ConfigError(source + ": " + e.what());
      }
    }
  }
  for (const auto& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("override '" + o + "': expected key=value");
    const Key* k = find_key(o.substr(0, eq));
    if (!k) unknown_key(o.substr(0, eq), "command line");
    k->set(c, o.substr(eq + 1));
    c.given.insert(k->name);
  }
  if (c.dim_att == 0) c.dim_att = c.n_embd;
  c.validate();
  return c;
}
}  // namespace

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream f(path);
  if (!f) throw ConfigError(path + ": cannot read the config file");
  std::stringstream s;
  s << f.rdbuf();
  return parse_train_config(s.str(), path, overrides);
}

const std::vector<std::pair<std::string, std::string>>& train_config_keys() {
  static const std::vector<std::pair<std::string, std::string>> out = [] {
    std::vector<std::pair<std::string, std::string>> v;
    const TrainConfig defaults;
    for (const auto& k : keys()) v.emplace_back(k.name, "(default " + k.get(defaults) + ") " + k.meaning);
    return v;
  }();
  return out;
}

std::vector<std::string> train_config_key_names() {
  std::vector<std::string> names;
  for (const auto& k : keys()) names.push_back(k.name);
  return names;
}

std::string describe(const TrainConfig& c) {
  std::string s;
  for (const auto& k : keys()) s += k.name + ": " + k.get(c) + "\n";
  return s;
}

}  // namespace rwkv7
