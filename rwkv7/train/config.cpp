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

using Rule = std::function<bool(const TrainConfig&)>;
using Message = std::function<std::string(const TrainConfig&)>;

// A test of the config and what the refusal says when it fails.
struct Check {
  Rule holds;
  Message message;
};

// One entry per key: how to read it into the struct, how to print it, what it means, and its checks.
struct Key {
  std::string name, meaning;
  bool is_list = false;  // a YAML sequence (or "a,b" on the command line)
  std::function<void(TrainConfig&, const std::string&)> set;
  std::function<std::string(const TrainConfig&)> get;
  std::vector<Check> checks;  // of the value alone
  std::vector<Check> rules;   // between keys: tested once every value passed its own checks
  // When the key means something: a key given for a run it does not apply to is refused
  // (it would be ignored without a word). Empty: always.
  Rule applies;
  std::string applies_when;  // e.g. "peft: lora", for the refusal
};

template <typename T>
T parse_value(const std::string& key, const std::string& text) {
  static_assert(std::is_enum_v<T>, "a key's type is int64_t, double, a string, a list of strings or a named enum");
  if (const auto v = enum_from_name<T>(text)) return *v;
  throw ConfigError("key '" + key + "': must be " + enum_choices<T>() + ", got '" + text + "'");
}

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
template <typename E, typename = std::enable_if_t<std::is_enum_v<E>>>
std::string show(E v) {
  return name_of(v);
}

// Builds a Key from its declaration in config_keys.inc: the member, then the checks chained on it.
template <typename T>
struct KeyBuilder {
  Key key;
  T TrainConfig::*field;

  KeyBuilder(const char* name, T TrainConfig::*f, const char* meaning) : field(f) {
    key.name = name;
    key.meaning = meaning;
    key.is_list = std::is_same_v<T, std::vector<std::string>>;
    key.set = [n = key.name, f](TrainConfig& c, const std::string& text) { c.*f = parse_value<T>(n, text); };
    key.get = [f](const TrainConfig& c) { return show(c.*f); };
  }
  KeyBuilder&& check(Rule holds, Message message) && {
    key.checks.push_back({std::move(holds), std::move(message)});
    return std::move(*this);
  }
  KeyBuilder&& check(Rule holds, const std::string& message) && {
    return std::move(*this).check(std::move(holds), [message](const TrainConfig&) { return message; });
  }
  KeyBuilder&& rule(Rule holds, Message message) && {
    key.rules.push_back({std::move(holds), std::move(message)});
    return std::move(*this);
  }
  KeyBuilder&& rule(Rule holds, const std::string& message) && {
    return std::move(*this).rule(std::move(holds), [message](const TrainConfig&) { return message; });
  }
  KeyBuilder&& only_when(Rule applies, std::string when) && {
    key.applies = std::move(applies);
    key.applies_when = std::move(when);
    return std::move(*this);
  }
  // The checks of a number alone.
  KeyBuilder&& at_least(T least, const std::string& note = "") && {
    const auto f = field;
    return std::move(*this).check([f, least](const TrainConfig& c) { return c.*f >= least; },
                                  [f, least, note](const TrainConfig& c) {
                                    return "must be >= " + show(least) + (note.empty() ? "" : " " + note) +
                                           ", got " + show(c.*f);
                                  });
  }
  KeyBuilder&& positive() && {
    const auto f = field;
    return std::move(*this).check([f](const TrainConfig& c) { return c.*f > 0; },
                                  [f](const TrainConfig& c) { return "must be > 0, got " + show(c.*f); });
  }
  KeyBuilder&& flag() && {
    const auto f = field;
    return std::move(*this).check([f](const TrainConfig& c) { return c.*f == 0 || c.*f == 1; },
                                  [f](const TrainConfig& c) { return "must be 0 or 1, got " + show(c.*f); });
  }
  KeyBuilder&& fraction() && {  // [0, 1)
    const auto f = field;
    return std::move(*this).check([f](const TrainConfig& c) { return c.*f >= 0 && c.*f < 1; },
                                  [f](const TrainConfig& c) { return "must be in [0, 1), got " + show(c.*f); });
  }
  KeyBuilder&& not_empty() && {
    const auto f = field;
    return std::move(*this).check([f](const TrainConfig& c) { return !(c.*f).empty(); }, "must not be empty");
  }
};

bool pad(const TrainConfig& c) { return c.dataload == DataLoad::pad; }
bool lora(const TrainConfig& c) { return c.peft == PeftKind::lora; }
bool disha(const TrainConfig& c) { return c.peft == PeftKind::disha; }
bool pissa(const TrainConfig& c) { return c.peft == PeftKind::pissa; }
bool adapter(const TrainConfig& c) { return c.peft != PeftKind::none; }
bool chunked(const TrainConfig& c) { return c.chunk_ctx > 0; }

const std::vector<Key>& keys() {
  static const std::vector<Key> k = {
#define RWKV7_KEY(name, type, default_value, meaning, ...) \
  (KeyBuilder<type>(#name, &TrainConfig::name, meaning) __VA_ARGS__).key,
#include "rwkv7/train/config_keys.inc"
#undef RWKV7_KEY
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
  if (product_or_overflow({epochs, c.steps_per_epoch(), c.real_bsz(), c.ctx_len}) < 0)
    throw ConfigError(fmt::format(
        "key '{}': {} steps per mini-epoch x {} mini-epochs x {} samples x ctx_len {} is more tokens than a "
        "64-bit count holds", c.epoch_steps > 0 ? "epoch_steps" : "epoch_samples", c.steps_per_epoch(), epochs,
        c.real_bsz(), c.ctx_len));
  if (product_or_overflow({c.magic_prime, c.ctx_len}) < 0)
    throw ConfigError(fmt::format("key 'magic_prime': {} x ctx_len {} is more tokens than a 64-bit count holds",
                                  c.magic_prime, c.ctx_len));
}

// A key given for a run it does not apply to would be ignored without a word: refuse it, with
// the value this run has of the key its condition names (the condition's first word).
void check_given_keys_apply(const TrainConfig& c) {
  for (const Key& k : keys()) {
    if (!k.applies || !c.given.count(k.name) || k.applies(c)) continue;
    const std::string deciding = k.applies_when.substr(0, k.applies_when.find_first_of(": <>="));
    std::string has;
    for (const Key& d : keys())
      if (d.name == deciding) has = fmt::format("; this run has {}: {}", d.name, d.get(c));
    throw ConfigError(fmt::format("key '{}': applies to runs with {}{} (remove the key, or set what it needs)",
                                  k.name, k.applies_when, has));
  }
}

}  // namespace

void TrainConfig::validate() const {
  for (const Key& k : keys())
    for (const Check& check : k.checks)
      if (!check.holds(*this)) throw ConfigError("key '" + k.name + "': " + check.message(*this));
  for (const Key& k : keys())
    for (const Check& rule : k.rules)
      if (!rule.holds(*this)) throw ConfigError("key '" + k.name + "': " + rule.message(*this));
  check_counts_fit(*this);
  check_given_keys_apply(*this);
}

PeftOptions TrainConfig::peft_options() const {
  PeftOptions o;
  o.train_type = train_type;
  o.peft = peft;
  o.lora_r = lora_r;
  o.lora_alpha = lora_alpha;
  o.lora_dropout = lora_dropout;
  o.disha_r = disha_r;
  o.pissa_r = pissa_r;
  o.svd_niter = svd_niter;
  o.train_parts = train_parts;
  return o;
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
