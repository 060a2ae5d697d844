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

namespace rwkv7 {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainConfig {
  // --- the seed's arguments (train.py), with its defaults ---
  std::string proj_dir = "out";
  std::string data_file;            // binidx prefix (without .bin / .idx)
  std::string data_type = "binidx";
  int64_t vocab_size = 0;           // 0: required to be set
  int64_t ctx_len = 1024;
  int64_t n_layer = 6;
  int64_t n_embd = 512;
  int64_t head_size = 64;
  int64_t dim_att = 0;              // 0: n_embd (RWKV-7 needs dim_att == n_embd)
  // LoRA widths of a new model (0: the seed's formula); a loaded checkpoint's own widths win
  int64_t d_decay_lora = 0, d_aaa_lora = 0, d_mv_lora = 0, d_gate_lora = 0;
  int64_t micro_bsz = 12;
  double lr_init = 6e-4;
  double lr_final = 1e-5;
  int64_t warmup_steps = -1;        // -1: none for a fresh run, 10 when resuming
  double beta1 = 0.9;
  double beta2 = 0.99;
  double adam_eps = 1e-18;
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  int64_t my_exit_tokens = 0;       // the token budget; required (> 0)
  int64_t magic_prime = 0;          // prime, 2 mod 3, ~ tokens / ctx_len; 0: the seed's rule for the data
  int64_t epoch_save = 5;
  int64_t epoch_count = 0;          // derived as magic_prime // epoch_samples (the seed ignores the flag)
  int64_t epoch_begin = 0;
  int64_t train_stage = 0;          // 0: fresh (or load_model); >= 2: resume from proj_dir
  std::string load_model;
  int64_t random_seed = -1;         // -1: a seed from the clock (printed)
  std::string precision = "fp32";   // fp32 | bf16 (bf16: fp32 master weights)
  int64_t grad_cp = 0;              // 1: recompute each block in the backward pass

  // --- ours ---
  std::string device = "auto";      // cpu | cuda | auto (cuda when there is one)
  int64_t epoch_samples = 40320;    // samples per mini-epoch (the seed hard-codes 40320)
  int64_t threads = 0;              // CPU threads for LibTorch; 0: its default
  int64_t epoch_limit = 0;          // stop cleanly after this many mini-epochs of this run; 0: no limit
  int64_t overwrite = 0;            // 1: a fresh start may remove another run's checkpoints in proj_dir
  int64_t exact_resume = 1;         // 1: resume from rwkv-<n>.state.pth when present; 0: as the seed
  int64_t max_bad_steps = 20;       // stop after this many steps in a row with a non-finite loss/gradient
  int64_t devices = 1;              // world size (data-parallel processes); set from WORLD_SIZE
  int64_t zero_stage = 0;           // 1: shard the optimizer state across ranks (ZeRO stage 1)
  int64_t dist_timeout = 120;       // seconds a collective may wait for the other ranks
  std::string val_data_file;        // binidx prefix of held-out data; "" = no validation
  int64_t val_every = 0;            // validate every this many steps (0: at each mini-epoch end)
  int64_t val_samples = 64;         // the fixed held-out set: this many ctx_len windows
  int64_t fused_ops = 0;            // 1: the fused ops of the training step (ops/schema.cpp)
  int64_t head_chunk = 0;           // > 0: head + loss in chunks of this many rows, no full logits
  double peak_tflops = 0;           // the device's peak bf16/fp32 TFLOP/s for MFU; 0: known GPUs' defaults

  // --- fine-tuning a released model (load_model) as RWKV-PEFT does it, under its argument names ---
  std::string train_type = "none";  // state: train only each layer's initial WKV state (time_state)
  std::string peft = "none";        // none | lora | disha | pissa
  int64_t lora_r = 8;
  double lora_alpha = 32;
  double lora_dropout = 0.01;
  std::string lora_load;            // adapter file (rwkv-<n>.pth of a fine-tuning run) to start from
  std::string disha_mode = "bone";  // bone (the one DiSHA mode RWKV-PEFT trains for RWKV-7)
  int64_t disha_r = 64;
  int64_t pissa_r = 8;
  int64_t svd_niter = 4;
  std::string pissa_init;           // with lora_load: the init_pissa.pth (B0, A0) of the run that made that adapter
  // base tensors trained beside an adapter (name contains). RWKV-PEFT's default also lists "time",
  // which names RWKV-6's time-mix tensors and nothing of RWKV-7's, so it is not ours.
  std::vector<std::string> train_parts = {"ln"};
  std::string dataload = "magic_prime";  // magic_prime: the seed's sampler; pad: one document per sample
  int64_t data_shuffle = 1;         // dataload pad: 1 documents in a seeded random order, 0 in file order
  int64_t epoch_steps_key = 0;      // key epoch_steps: steps per mini-epoch (dataload pad); 0: epoch_samples / real_bsz
  std::string lr_schedule = "seed"; // seed: the seed's (token budget, warmup); cos: RWKV-PEFT's over epoch_count mini-epochs

  // The keys the YAML file or the command line set (the rest keep their defaults): a key that
  // does not apply to this run is refused only when it was given.
  std::set<std::string> given;

  bool fine_tuning() const { return train_type == "state" || peft != "none"; }
  // The run's length in mini-epochs when it is counted in mini-epochs (dataload pad, lr_schedule cos).
  bool counts_epochs() const { return dataload == "pad" || lr_schedule == "cos"; }

  int64_t real_bsz() const { return micro_bsz * devices; }
  int64_t epoch_steps() const { return epoch_steps_key > 0 ? epoch_steps_key : epoch_samples / real_bsz(); }

  // Throws ConfigError naming the first key whose value is out of range.
  void validate() const;
  void validate_fine_tuning() const;  // the fine-tuning keys (validate() calls it)
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
