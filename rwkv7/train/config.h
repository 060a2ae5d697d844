// The training configuration: one typed struct, loaded from YAML whose keys are the seed's
// argument names (train.py), plus a few of ours. Unknown keys are rejected; every value is
// validated with a message that names its key. `key=value` overrides use the same names.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "rwkv7/peft/peft_options.h"
#include "rwkv7/util/config_error.h"
#include "rwkv7/util/named_enum.h"

namespace rwkv7 {

enum class DataType { binidx };
enum class Precision { fp32, bf16 };          // bf16: bf16 compute, fp32 master weights
enum class DeviceChoice { cpu, cuda, automatic };  // automatic ("auto"): cuda when there is one
enum class DataLoad { magic_prime, pad };     // pad: one document per sample
enum class LrSchedule { seed, cos };          // cos: RWKV-PEFT's over epoch_count mini-epochs
enum class Bptt { full, truncated };          // long context (chunk_ctx): the gradient across chunks or not

template <>
struct EnumNames<DataType> {
  static constexpr std::pair<DataType, const char*> rows[] = {{DataType::binidx, "binidx"}};
};
template <>
struct EnumNames<Precision> {
  static constexpr std::pair<Precision, const char*> rows[] = {{Precision::fp32, "fp32"}, {Precision::bf16, "bf16"}};
};
template <>
struct EnumNames<DeviceChoice> {
  static constexpr std::pair<DeviceChoice, const char*> rows[] = {
      {DeviceChoice::cpu, "cpu"}, {DeviceChoice::cuda, "cuda"}, {DeviceChoice::automatic, "auto"}};
};
template <>
struct EnumNames<DataLoad> {
  static constexpr std::pair<DataLoad, const char*> rows[] = {{DataLoad::magic_prime, "magic_prime"}, {DataLoad::pad, "pad"}};
};
template <>
struct EnumNames<LrSchedule> {
  static constexpr std::pair<LrSchedule, const char*> rows[] = {{LrSchedule::seed, "seed"}, {LrSchedule::cos, "cos"}};
};

template <>
struct EnumNames<Bptt> {
  static constexpr std::pair<Bptt, const char*> rows[] = {{Bptt::full, "full"}, {Bptt::truncated, "truncated"}};
};

struct TrainConfig {
  // The keys, their types and defaults: config_keys.inc (their meanings and checks beside them).
#define RWKV7_KEY(name, type, default_value, meaning, ...) type name = default_value;
#include "rwkv7/train/config_keys.inc"
#undef RWKV7_KEY

  // The keys the YAML file or the command line set (the rest keep their defaults): a key that
  // does not apply to this run is refused only when it was given.
  std::set<std::string> given;

  bool fine_tuning() const { return train_type == TrainType::state || peft != PeftKind::none; }
  // The run's length in mini-epochs when it is counted in mini-epochs (dataload pad, lr_schedule cos).
  bool counts_epochs() const { return dataload == DataLoad::pad || lr_schedule == LrSchedule::cos; }

  // Samples of one optimizer step: this process's (micro_bsz per forward, accumulate_grad_batches
  // forwards), and all processes'.
  int64_t samples_per_step() const { return micro_bsz * accumulate_grad_batches; }
  int64_t real_bsz() const { return samples_per_step() * devices; }
  int64_t steps_per_epoch() const { return epoch_steps > 0 ? epoch_steps : epoch_samples / real_bsz(); }

  // What the peft layer needs of the run.
  PeftOptions peft_options() const;

  // Throws ConfigError naming the first key whose value is out of range: every value alone
  // first, then the rules between keys.
  void validate() const;
};

// The YAML file, then `key=value` overrides. Throws ConfigError naming file, key and fault.
TrainConfig load_train_config(const std::string& yaml_path,
                              const std::vector<std::string>& overrides = {});
// The same from YAML text (for tests).
TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source,
                               const std::vector<std::string>& overrides = {});

// key -> (default, meaning), in the order of the struct: for --help and the docs.
const std::vector<std::pair<std::string, std::string>>& train_config_keys();

// The keys' names alone, in the same order (for the command line's hints).
std::vector<std::string> train_config_key_names();

// The settings as "key: value" lines (for train_log.txt and the console).
std::string describe(const TrainConfig& c);

}  // namespace rwkv7
