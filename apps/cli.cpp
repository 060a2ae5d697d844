#include "cli.h"

#include <fmt/format.h>

#include "rwkv7/io/fs.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace rwkv7::cli {

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = options.find(name);
  return it == options.end() ? fallback : it->second;
}

std::string Args::require(const std::string& name) const {
  auto it = options.find(name);
  if (it == options.end()) throw UsageError("missing --" + name + " (see --help)");
  return it->second;
}

Args parse(int argc, char** argv, const std::vector<std::string>& with_value,
           const std::vector<std::string>& flags, const std::vector<std::string>& config_keys) {
  Args a;
  auto known = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  for (int i = 0; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      a.help = true;
    } else if (s.rfind("--", 0) == 0) {
      std::string name = s.substr(2), value;
      const size_t eq = name.find('=');
      const bool inline_value = eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      if (known(flags, name)) {
        a.options[name] = "1";
      } else if (known(with_value, name)) {
        if (!inline_value) {
          if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
          value = argv[++i];
        }
        a.options[name] = value;
      } else {
        std::string key = name;
        std::replace(key.begin(), key.end(), '-', '_');
        if (known(config_keys, key)) {
          if (!inline_value)
            value = i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0 ? argv[i + 1] : "VALUE";
          throw UsageError("unknown option --" + name + ": config keys are given as key=value; write " + key +
                           "=" + value);
        }
        throw UsageError("unknown option --" + name + " (see --help)");
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

void refuse_output_over_inputs(const std::string& option, const std::string& out,
                               const std::vector<std::string>& inputs) {
  for (const std::string& input : inputs)
    if (!input.empty() && fs::same_file(out, input))
      throw UsageError(fmt::format("--{} {} is the input {}: writing it would destroy that input; choose another path",
                                   option, out, input));
}

std::pair<std::string, std::string> tokenizer_choice(const Args& args) {
  if (args.has("vocab") == args.has("tokenizer"))
    throw UsageError("give exactly one of --vocab V.txt or --tokenizer bytes");
  return {args.get("tokenizer", ""), args.get("vocab", "")};
}

std::vector<int64_t> parse_int_list(const std::string& option, const std::string& text) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    const bool plain = !item.empty() && item.find_first_not_of("-0123456789") == std::string::npos &&
                       item.find('-', 1) == std::string::npos;  // [-]digits: no spaces, '+' or hex
    if (!plain || used != item.size())
      throw UsageError("--" + option + ": '" + item + "' is not an integer");
    out.push_back(v);
    start = end + 1;
  }
  return out;
}

double parse_number(const std::string& option, const std::string& text, double lo, double hi) {
  // a plain decimal: [-]digits[.digits][e[-+]digits]; no spaces, '+', hex, inf or nan
  const bool plain = !text.empty() && text.find_first_not_of("0123456789.eE+-") == std::string::npos &&
                     text[0] != '+' && text[0] != 'e' && text[0] != 'E';
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::out_of_range&) {
    throw UsageError("--" + option + ": " + text + " is out of range");
  } catch (const std::exception&) {
    used = 0;
  }
  if (!plain || used != text.size() || !std::isfinite(v))
    throw UsageError("--" + option + ": '" + text + "' is not a number");
  if (v < lo || v > hi)
    throw UsageError("--" + option + ": " + text + " is outside [" + fmt::format("{}", lo) + ", " +
                     fmt::format("{}", hi) + "]");
  return v;
}

int64_t parse_int(const std::string& option, const std::string& text, int64_t lo, int64_t hi) {
  const std::vector<int64_t> v = parse_int_list(option, text);
  if (v.size() != 1) throw UsageError("--" + option + ": expected one integer, got '" + text + "'");
  if (v[0] < lo || v[0] > hi)
    throw UsageError("--" + option + ": " + text + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v[0];
}

}  // namespace rwkv7::cli
