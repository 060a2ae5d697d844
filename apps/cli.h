// Command-line plumbing shared by the subcommands: `--name value` options, `--flag`
// switches, `key=value` overrides, and the one error type the app's edge prints.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rwkv7::cli {

// A bad command line: printed as one line, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::map<std::string, std::string> options;  // --name value
  std::vector<std::string> positional;         // anything else (e.g. key=value)
  bool help = false;

  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback) const;
  std::string require(const std::string& name) const;
};

// `flags` lists options that take no value. Unknown options are an error. `config_keys`: the
// config keys a command takes as key=value; an unknown option that names one (`--proj_dir X`, or
// `--ctx-len X` for ctx_len) is refused with the key=value to write instead.
Args parse(int argc, char** argv, const std::vector<std::string>& options_with_value,
           const std::vector<std::string>& flags = {}, const std::vector<std::string>& config_keys = {});

// --vocab V.txt or --tokenizer bytes, exactly one of them, as make_tokenizer's arguments
std::pair<std::string, std::string> tokenizer_choice(const Args& args);

// Throws UsageError when the file `out` (of option --`option`) is one of `inputs` (the same path,
// a link to it, or another hard link): writing it would destroy that input. Empty names are skipped.
void refuse_output_over_inputs(const std::string& option, const std::string& out,
                               const std::vector<std::string>& inputs);

// "34,105,110" -> {34, 105, 110}; every item a whole integer
std::vector<int64_t> parse_int_list(const std::string& option, const std::string& text);
// The whole text as one finite number (or integer) in [lo, hi]; else a UsageError naming --option.
double parse_number(const std::string& option, const std::string& text, double lo, double hi);
int64_t parse_int(const std::string& option, const std::string& text, int64_t lo, int64_t hi);

}  // namespace rwkv7::cli
