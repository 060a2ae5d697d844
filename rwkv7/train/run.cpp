#include "rwkv7/train/run.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>
#include <mutex>
#include <thread>

#ifdef RWKV7_HAS_CUDA_OP
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "rwkv7/data/data.h"
#include "rwkv7/io/fs.h"
#include "rwkv7/io/safetensors.h"
#include "rwkv7/io/value_checks.h"
#include "rwkv7/model/init.h"
#include "rwkv7/model/load.h"
#include "rwkv7/train/cpu_block_cache.h"
#include "rwkv7/peft/adapters.h"
#include "rwkv7/peft/peft_names.h"
#include "rwkv7/train/long_context.h"
#include "rwkv7/train/loss.h"
#include "rwkv7/train/loss_parts.h"
#include "rwkv7/train/sharded_params.h"
#include "rwkv7/util/clock.h"

namespace rwkv7 {

namespace {

// The time once the device has finished the work queued so far.
double synced_seconds(const at::Device& d) {
#ifdef RWKV7_HAS_CUDA_OP
  if (d.is_cuda()) c10::cuda::device_synchronize();
#else
  (void)d;
#endif
  return now_seconds();
}

// Every token id of `data` (the file `path`) < vocab_size.
void check_token_ids(const BinIdx& data, const std::string& path, const TrainConfig& cfg) {
  const int64_t top = data.max_token();
  if (top >= cfg.vocab_size)
    throw ConfigError(fmt::format("key 'vocab_size': {} has token id {} >= vocab_size {}", path, top, cfg.vocab_size));
}

// The seeds derived from random_seed (a document order, a mini-epoch's dropout) are
// random_seed * kSeedStride + a small count, so that no two of one run's coincide.
constexpr uint64_t kSeedStride = 1000003;

// A fixed held-out set: `count` windows of ctx_len + 1 tokens spread evenly over the data.
at::Tensor validation_windows(const BinIdx& data, int64_t ctx_len, int64_t count) {
  if (data.num_tokens() < static_cast<uint64_t>(ctx_len + 1))
    throw ConfigError("key 'val_data_file': fewer tokens than ctx_len + 1");
  at::Tensor w = at::empty({count, ctx_len + 1}, at::kLong);
  const uint64_t span = data.num_tokens() - (ctx_len + 1);
  for (int64_t j = 0; j < count; ++j)
    data.read(span * j / count, ctx_len + 1, w[j].data_ptr<int64_t>());
  return w;
}

// The model a checkpoint holds must be the config's (its LoRA and FFN widths may differ:
// released models do).
void check_fits_config(const ModelShape& got, const TrainConfig& cfg, const std::string& path) {
  const ModelShape want = model_shape(cfg);
  if (got.n_layer != want.n_layer || got.n_embd != want.n_embd || got.vocab_size != want.vocab_size ||
      got.head_size != want.head_size)
    throw CheckpointError(fmt::format(
        "{} does not fit the model: it is L{} D{} V{} head {}, the config says L{} D{} V{} head {}", path,
        got.n_layer, got.n_embd, got.vocab_size, got.head_size, want.n_layer, want.n_embd, want.vocab_size,
        want.head_size));
}

// What a state file records of the run's precision (16: bf16 compute with fp32 masters, 32: fp32).
int64_t precision_bits(const TrainConfig& cfg) { return cfg.precision == Precision::bf16 ? 16 : 32; }

// an adapter's or tuned state's tensors (RWKV-PEFT's names)
bool holds_fine_tuning_tensors(const StateDict& d) {
  for (const auto& kv : d)
    if (peft_names::is_adapter(kv.first) || peft_names::is_time_state(kv.first)) return true;
  return false;
}

// What cfg says of the adapter it trains (the digests are filled in by the run).
FineTuneOrigin settings_of(const TrainConfig& cfg) {
  FineTuneOrigin o;
  const PeftOptions peft = cfg.peft_options();
  o.kind = peft.kind();
  o.rank = peft.rank();
  o.lora_alpha = o.kind == AdapterKind::lora ? cfg.lora_alpha : 0;
  return o;
}

uint64_t clock_or_config_seed(const TrainConfig& cfg) {
  return cfg.random_seed >= 0 ? static_cast<uint64_t>(cfg.random_seed) : static_cast<uint64_t>(std::time(nullptr));
}

// The generator that LoRA's dropout draws from on `device`.
at::Generator default_generator(const at::Device& device) {
  return at::globalContext().defaultGenerator(device.is_cuda() ? device : at::Device(at::kCPU));
}

bool all_finite(RWKV& model) {
  at::NoGradGuard no_grad;
  for (const auto& p : model->parameters())
    if (!at::isfinite(p).all().item<bool>()) return false;
  return true;
}

}  // namespace

ModelShape model_shape(const TrainConfig& cfg) {
  ModelShape s = seed_shape(cfg.n_layer, cfg.n_embd, cfg.vocab_size, cfg.head_size);
  if (cfg.d_decay_lora) s.d_decay = cfg.d_decay_lora;
  if (cfg.d_aaa_lora) s.d_aaa = cfg.d_aaa_lora;
  if (cfg.d_mv_lora) s.d_mv = cfg.d_mv_lora;
  if (cfg.d_gate_lora) s.d_gate = cfg.d_gate_lora;
  return s;
}

at::Device training_device(const TrainConfig& cfg, int64_t local_rank) {
  const bool have_cuda = at::globalContext().hasCUDA();
  if (cfg.device == DeviceChoice::cuda && !have_cuda)
    throw ConfigError("key 'device': cuda was asked for, but no CUDA device is available");
  return (cfg.device == DeviceChoice::cuda || (cfg.device == DeviceChoice::automatic && have_cuda))
             ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank))
             : at::Device(at::kCPU);
}

at::ScalarType compute_dtype(const TrainConfig& cfg) {
  return cfg.precision == Precision::bf16 ? at::kBFloat16 : at::kFloat;
}

RWKV init_model(const TrainConfig& cfg, uint64_t seed) {
  RWKV model(model_shape(cfg));
  init_seed_weights(model, seed);
  return model;
}

namespace {
// proj_dir/rwkv-init.pth, new; the caller holds the folder.
std::string write_init_checkpoint(const TrainConfig& cfg) {
  const RunDir dir(cfg.proj_dir);
  const uint64_t seed = clock_or_config_seed(cfg);
  RWKV model = init_model(cfg, seed);
  if (cfg.precision == Precision::bf16) model->to(at::kBFloat16);
  const StateDict weights = model->state_dict();
  dir.save_weights(dir.init_checkpoint(), weights);
  std::printf("wrote %s (seed %llu, %s)\n", dir.init_checkpoint().c_str(),
              static_cast<unsigned long long>(seed), name_of(cfg.precision));
  return dir.init_checkpoint();
}
}  // namespace

std::string prepare_init(const TrainConfig& cfg) {
  const RunDir dir(cfg.proj_dir);
  dir.ensure_writable();
  const RunDirLock hold(dir.path(), "prepare");
  dir.remove_unfinished_writes();
  dir.make_room_for_fresh_run(cfg.overwrite == 1, /*remove=*/true);
  return write_init_checkpoint(cfg);
}

Run::Run(const TrainConfig& config, Purpose purpose)
    : cfg_(config),
      env_(dist_env_from_environment()),
      dir_(config.proj_dir) {
  if (env_.enabled()) {  // torchrun-style: WORLD_SIZE processes, rank 0 alone writes
    if (cfg_.devices != 1 && cfg_.devices != env_.world)
      throw ConfigError(fmt::format("key 'devices': {} but WORLD_SIZE is {}", cfg_.devices, env_.world));
    cfg_.devices = env_.world;
    cfg_.validate();
  }
  rank0_ = env_.rank == 0;
  if (!env_.enabled() && cfg_.zero_stage > 0)
    std::fprintf(stderr, "warning: zero_stage: %lld with one process shards nothing (start several: docs/distributed.md)\n",
                 static_cast<long long>(cfg_.zero_stage));
  // the fused cross-entropy takes no ignored targets (-100), which dataload pad makes
  fused_loss_ = cfg_.fused_ops == 1 && cfg_.dataload != DataLoad::pad;
  sharded_ = env_.enabled() && cfg_.zero_stage >= 1;
  checkpointer_ = std::make_unique<Checkpointer>(dir_, sharding(), rank0_, precision_bits(cfg_),
                                                 [this](const std::function<void()>& f) { agreed(f); });
  if (cfg_.threads > 0) at::set_num_threads(static_cast<int>(cfg_.threads));
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores > 0 && cfg_.threads > static_cast<int64_t>(cores) && rank0_)
    std::fprintf(stderr, "warning: threads: %lld is more than this machine's %u cores; steps will be slower\n",
                 static_cast<long long>(cfg_.threads), cores);
  device_ = training_device(cfg_, env_.local_rank);
  if (device_.is_cpu() && cfg_.cpu_cache == 1) install_cpu_block_cache();
#ifdef RWKV7_HAS_CUDA_OP
  // each rank's GPU its current device: device_synchronize, NCCL's barrier and the CUDA context
  // then use cuda:LOCAL_RANK rather than cuda:0
  if (device_.is_cuda()) c10::cuda::set_device(static_cast<c10::DeviceIndex>(std::max<int>(device_.index(), 0)));
#endif
  if (purpose == Purpose::kBench) {
    start_.note = "bench: the config's model, freshly initialised";
    if (env_.enabled())  // (under torchrun: every rank times its part of the same step)
      comm_ = std::make_unique<Communicator>(env_, std::chrono::seconds(cfg_.dist_timeout), device_.is_cuda());
    model_ = init_model(cfg_, 0);
    if (cfg_.fine_tuning()) {  // the base stands in for a released model; its adapters as a run adds them
      add_adapters(model_, cfg_.peft_options(), 0);
      freeze_all_but_trained(model_, cfg_.peft_options());
    }
    build_model();
    build_optimizer({});
    return;
  }
  dir_.ensure_writable();
  if (env_.enabled())
    comm_ = std::make_unique<Communicator>(env_, std::chrono::seconds(cfg_.dist_timeout), device_.is_cuda());
  agreed([&] {
    if (!rank0_) return;
    lock_ = std::make_unique<RunDirLock>(dir_.path(), "train");
    dir_.remove_unfinished_writes();
  });
  open_data();
  StateDict training_state;
  agreed([&] { training_state = choose_start(); });  // (rank 0's rwkv-init.pth is written after it)
  if (rank0_) std::printf("%s\n", start_.note.c_str());
  if (cfg_.fine_tuning()) {
    build_fine_tuned_model(training_state);
  } else {
    if (start_.weights.empty()) start_.weights = read_weights(start_.load_path);
    if (!has_tensor(start_.weights, "emb.weight") && holds_fine_tuning_tensors(start_.weights))
      throw ConfigError(fmt::format(
          "key 'peft': {} holds only fine-tuning tensors (an adapter or tuned state, not a model); resume a "
          "fine-tuning run with its train_type / peft and its base as load_model, or merge it into its base "
          "with rwkv7 merge", start_.load_path));
    model_ = model_from_state_dict(start_.weights, start_.load_path);
    check_fits_config(model_->shape, cfg_, start_.load_path);
  }
  start_.weights.clear();
  build_model();
  build_optimizer(training_state);
  add_checkpointed_parts();
}

// What the training state holds, in this order: the position, the fine-tuning origin, this
// process's generator (LoRA dropout; per rank only when sharded), the optimizer.
void Run::add_checkpointed_parts() {
  checkpointer_->add_part([this] { return pos_.state_dict(); });
  checkpointer_->add_part([this] {  // the batch's layout: what a resume must match, named when it does not
    return StateDict{{"run.micro_bsz", at::tensor(cfg_.micro_bsz)},
                     {"run.accumulate_grad_batches", at::tensor(cfg_.accumulate_grad_batches)},
                     {"run.devices", at::tensor(cfg_.devices)}};
  });
  if (cfg_.fine_tuning()) checkpointer_->add_part([this] { return origin_.state_dict(); });
  if (!env_.enabled() || sharded_)
    checkpointer_->add_part([this] {
      at::Generator gen = default_generator(device_);
      std::lock_guard<std::mutex> hold(gen.mutex());
      return StateDict{{"run.rng_state", gen.get_state()}};
    });
  checkpointer_->add_part([this] { return optimizer_->state_dict(); });
}

Run::~Run() {
  if (model_) model_->gathering = nullptr;
}

// Fine-tuning: the base (load_model), RWKV-PEFT's additions, then their values from the run's
// newest rwkv-<n>.pth (resume) or lora_load; everything but the trained tensors frozen. A resume
// must continue the run its training state describes (check_origin).
void Run::build_fine_tuned_model(const StateDict& training_state) {
  if (cfg_.load_model.empty())
    throw ConfigError("key 'load_model': fine-tuning (train_type: state or peft) needs the base model to adapt");
  const StateDict base = read_weights(cfg_.load_model);
  check_finite(base, cfg_.load_model);
  FineTuneOrigin origin = settings_of(cfg_);
  origin.base_digest = contents_digest(base);
  model_ = model_from_state_dict(base, cfg_.load_model);
  check_fits_config(model_->shape, cfg_, cfg_.load_model);
  check_train_parts();
  const uint64_t seed = clock_or_config_seed(cfg_);
  const bool resumed = start_.load_path != cfg_.load_model;
  // PiSSA trains (B, A) on the frozen residual W - B0 A0 of its start (B0, A0): a fresh run's own
  // SVD; a resumed run's proj_dir/init_pissa.pth; for lora_load, pissa_init (the init of the run
  // that made the adapter). The start is kept in proj_dir/init_pissa.pth for resume and merge.
  const std::string own_pissa = dir_.path() + "/init_pissa.pth";
  const std::string pissa_path = cfg_.peft != PeftKind::pissa ? "" : resumed ? own_pissa : cfg_.pissa_init;
  if (cfg_.peft == PeftKind::pissa && !resumed && !cfg_.lora_load.empty() && cfg_.pissa_init.empty())
    throw ConfigError("key 'pissa_init': a PiSSA adapter from lora_load needs the init_pissa.pth of the run that made it");
  const StateDict& origin_state = training_state.empty() ? origin_state_ : training_state;
  if (resumed) check_origin(origin_state, origin);  // kind, rank, alpha, base: before reading more
  if (cfg_.peft == PeftKind::pissa && resumed && !fs::exists(own_pissa))
    throw CheckpointError(fmt::format("{} is missing: a PiSSA run keeps its start there, so the run in {} was not "
                                      "started with peft: pissa (or the file was removed)", own_pissa, dir_.path()));
  const StateDict pissa_file = pissa_path.empty() ? StateDict{} : read_pth(pissa_path);
  check_float_weights(pissa_file, pissa_path);
  check_finite(pissa_file, pissa_path);
  const StateDict pissa_start =
      add_adapters(model_, cfg_.peft_options(), seed, pissa_path.empty() ? nullptr : &pissa_file, pissa_path);
  origin.pissa_digest = pissa_start.empty() ? 0 : contents_digest(pissa_start);
  if (resumed) {
    check_origin(origin_state, origin);  // now with the PiSSA start
    if (has_origin(origin_state)) {
      FineTuneOrigin saved;
      saved.load_state_dict(origin_state, state_file_);
      origin.lora_load_digest = saved.lora_load_digest;
    }
  } else if (!cfg_.lora_load.empty()) {
    const StateDict adapter = read_weights(cfg_.lora_load);
    check_float_weights(adapter, cfg_.lora_load);
    check_finite(adapter, cfg_.lora_load);
    origin.lora_load_digest = contents_digest(adapter);
    check_lora_load(origin);
    load_trained_tensors(model_, adapter, cfg_.peft_options(), cfg_.lora_load);
  }
  if (cfg_.peft == PeftKind::pissa && !resumed && rank0_) dir_.save_weights(own_pissa, pissa_start);
  if (resumed) load_trained_tensors(model_, start_.weights, cfg_.peft_options(), start_.load_path);
  origin_ = origin;
  const int64_t trained = freeze_all_but_trained(model_, cfg_.peft_options());
  int64_t total = 0;
  for (const auto& p : model_->parameters()) total += p.numel();
  start_.note += fmt::format("; fine-tuning ({}): {} of {} parameters trained ({:.2f}%)", name_of(origin.kind), trained, total,
                            100.0 * trained / total);
  if (rank0_) std::printf("fine-tuning %s: %lld of %lld parameters trained\n",
                         cfg_.train_type == TrainType::state ? "the state" : name_of(cfg_.peft), static_cast<long long>(trained),
                         static_cast<long long>(total));
}

// The training state of a resumed fine-tuning run names what it was started from; this config
// must match it (a state written before the origin was recorded is trusted, with a warning).
void Run::check_origin(const StateDict& training_state, const FineTuneOrigin& now) const {
  if (training_state.empty()) return;  // weights-only resume (said aloud by choose_start)
  if (!has_origin(training_state)) {
    if (rank0_ && now.pissa_digest == 0)
      std::fprintf(stderr, "warning: %s predates the fine-tuning origin checks; trusting that load_model and the "
                           "adapter settings are the run's\n", state_file_.c_str());
    return;
  }
  FineTuneOrigin saved;
  saved.load_state_dict(training_state, state_file_);
  FineTuneOrigin want = now;
  if (cfg_.peft == PeftKind::pissa && now.pissa_digest == 0) want.pissa_digest = saved.pissa_digest;  // (not read yet)
  const std::string why = origin_mismatch(saved, want, cfg_.load_model, dir_.path() + "/init_pissa.pth");
  if (!why.empty())
    throw CheckpointError(fmt::format("{}: {}. Resume with the settings and files the run was started with, or "
                                      "start a new run in another proj_dir", state_file_, why));
}

// lora_load must be an adapter of this kind; a PiSSA adapter's pissa_init must be its own run's.
// What says so: the adapter's training state beside it (the run's origin), else its folder's
// init_pissa.pth (a PiSSA run writes one, no other run does).
void Run::check_lora_load(const FineTuneOrigin& now) const {
  const std::string state_path = RunDir::state_file(cfg_.lora_load, StateSharding{});
  const AdapterEvidence beside = evidence_beside(cfg_.lora_load, state_path);
  const std::string& folder_pissa = beside.folder_pissa;
  if (beside.has_origin) {
    const FineTuneOrigin& made = beside.origin;
    if (made.kind != now.kind)
      throw ConfigError(fmt::format("key 'lora_load': {} is a {} adapter ({} says so), this run is peft: {}{}",
                                    cfg_.lora_load, adapter_title(made.kind), state_path, name_of(now.kind),
                                    made.kind == AdapterKind::pissa ? fmt::format("; fine-tune it with peft: pissa and pissa_init: "
                                                                       "its run's init_pissa.pth") : ""));
    if (made.pissa_digest != now.pissa_digest)
      throw ConfigError(fmt::format("key 'pissa_init': {} is not the PiSSA start of {} (digest {:#x}, its run's "
                                    "was {:#x})", cfg_.pissa_init, cfg_.lora_load,
                                    static_cast<uint64_t>(now.pissa_digest), static_cast<uint64_t>(made.pissa_digest)));
    return;
  }
  if (folder_pissa.empty()) return;
  if (cfg_.peft != PeftKind::pissa)
    throw ConfigError(fmt::format("key 'lora_load': {} is a PiSSA adapter (its folder holds {}); fine-tune it with "
                                  "peft: pissa and pissa_init: {}", cfg_.lora_load, folder_pissa, folder_pissa));
  if (!fs::same_file(folder_pissa, cfg_.pissa_init) &&
      contents_digest(read_pth(folder_pissa)) != contents_digest(read_pth(cfg_.pissa_init)))
    throw ConfigError(fmt::format("key 'pissa_init': {} is not the PiSSA start of {} (its folder's {} differs)",
                                  cfg_.pissa_init, cfg_.lora_load, folder_pissa));
}

// A train_parts name that matches no tensor would train nothing more, without a word.
void Run::check_train_parts() const {
  if (cfg_.peft == PeftKind::none) return;
  for (const std::string& part : cfg_.train_parts) {
    bool found = false;
    for (const auto& p : model_->named_parameters()) found = found || p.key().find(part) != std::string::npos;
    if (!found)
      throw ConfigError(fmt::format("key 'train_parts': '{}' is part of no tensor name of {} (RWKV-7's names hold "
                                    "e.g. emb, ln, att, ffn, head; 'time' named RWKV-6's time-mix tensors)", part,
                                    cfg_.load_model));
  }
}

void Run::open_data() {
  data_ = std::make_unique<BinIdx>(cfg_.data_file);
  if (cfg_.dataload == DataLoad::pad) {
    if (data_->num_documents() == 0) throw ConfigError("key 'data_file': " + cfg_.data_file + " holds no documents");
    check_token_ids(*data_, cfg_.data_file, cfg_);
  } else {
    if (cfg_.magic_prime == 0) {  // the seed's rule: the largest prime 2 mod 3 below tokens / ctx_len - 1
      cfg_.magic_prime = static_cast<int64_t>(suggest_magic_prime(data_->num_tokens(), cfg_.ctx_len));
      if (cfg_.magic_prime == 0)
        throw ConfigError(fmt::format("key 'magic_prime': {} holds {} tokens, too few for ctx_len {}", cfg_.data_file,
                                      data_->num_tokens(), cfg_.ctx_len));
      if (rank0_) std::printf("magic_prime: %lld (the seed's rule for %s and ctx_len %lld)\n",
                             static_cast<long long>(cfg_.magic_prime), cfg_.data_file.c_str(),
                             static_cast<long long>(cfg_.ctx_len));
    }
    const std::string why = check_magic_prime(cfg_.magic_prime, data_->num_tokens(), cfg_.ctx_len);
    if (!why.empty()) throw ConfigError("key 'magic_prime': " + why);
    check_token_ids(*data_, cfg_.data_file, cfg_);
  }
  if (cfg_.val_data_file.empty()) return;
  BinIdx val(cfg_.val_data_file);
  check_token_ids(val, cfg_.val_data_file, cfg_);
  val_windows_ = validation_windows(val, cfg_.ctx_len, cfg_.val_samples);
}

StateSharding Run::sharding() const { return StateSharding{sharded_, env_.rank, env_.world}; }

// Runs `what` on every rank; if it throws on any rank, it throws on all (the failing rank with its
// own message), instead of leaving the others waiting for a collective until dist_timeout.
// The small tensors the ranks sum (a failure flag, the loss, a squared norm): on the run's device,
// since NCCL takes CUDA tensors only (and Gloo CPU ones).
at::TensorOptions Run::collective_options() const { return at::TensorOptions().dtype(at::kDouble).device(device_); }

void Run::agreed(const std::function<void()>& what) {
  std::exception_ptr failure;
  try {
    what();
  } catch (...) {
    failure = std::current_exception();
  }
  if (comm_) {
    at::Tensor failed = at::tensor({failure ? 1.0 : 0.0}, collective_options());
    comm_->allreduce_sum(failed);
    if (!failure && failed.item<double>() > 0)
      throw std::runtime_error("another process of this run stopped with an error (its message says why)");
  }
  if (failure) std::rethrow_exception(failure);
}

// Fresh (rwkv-init.pth written now), a given checkpoint (load_model), or the seed's resume from
// proj_dir; in the last case, exactly when the checkpoint's training state is there.
StateDict Run::choose_start() {
  start_ = StartPoint{cfg_.load_model, cfg_.epoch_begin, cfg_.warmup_steps, "", {}};
  if (cfg_.train_stage >= 2) {
    start_ = dir_.find_resume_point(cfg_.warmup_steps);  // (it has read the weights)
    if (start_.weights.empty()) start_.weights = read_weights(start_.load_path);
    if (cfg_.fine_tuning() && has_tensor(start_.weights, "emb.weight"))
      throw ConfigError(fmt::format(
          "key 'train_stage': {} is a whole model, not the adapter a fine-tuning run saves: {} holds a full-training "
          "run; fine-tune in a new proj_dir with load_model: {}", start_.load_path, dir_.path(), start_.load_path));
  } else {
    dir_.make_room_for_fresh_run(cfg_.overwrite == 1, /*remove=*/rank0_, cfg_.epoch_begin, start_.load_path);
    start_.note = "loading " + start_.load_path;
    if (start_.load_path.empty()) {
      start_.load_path = dir_.init_checkpoint();
      if (rank0_) write_init_checkpoint(cfg_);
      start_.note = "fresh init";
    }
  }
  pos_ = RunPosition{};
  pos_.epoch_begin = start_.epoch_begin;
  pos_.warmup_steps = start_.warmup_steps;
  pos_.epoch_steps = cfg_.steps_per_epoch();
  if (cfg_.train_stage >= 2 && cfg_.exact_resume != 1 && cfg_.fine_tuning() && start_.load_path != dir_.init_checkpoint()) {
    // a weights-only resume of an adapter still continues what the run started from: its state
    // file, when there is one, says what that was (build_fine_tuned_model checks it)
    const std::string path = checkpointer_->state_file(start_.load_path);
    if (fs::is_regular_file(path)) {
      origin_state_ = read_pth(path);
      state_file_ = path;
    }
  }
  if (cfg_.train_stage < 2 || cfg_.exact_resume != 1 || start_.load_path == dir_.init_checkpoint()) return {};
  std::string why_not;
  std::string saved_as;
  const StateDict state = checkpointer_->read_state(start_.load_path, &why_not, &saved_as);
  if (state.empty()) {  // the seed's resume: weights only, said aloud
    start_.note += fmt::format(" (weights only: {})", why_not);
    if (rank0_) std::fprintf(stderr, "warning: resuming from the weights alone: %s\n", why_not.c_str());
    return {};
  }
  state_file_ = saved_as.empty() ? checkpointer_->state_file(start_.load_path)
                                 : fmt::format("the training state of {} ({})", start_.load_path, saved_as);
  pos_ = checked_position(state);
  // inside a mini-epoch, LoRA's dropout goes on from the generator as it was saved; a state
  // without it (rank 0's alone for several ranks, or an older file) draws new masks
  const bool mid_epoch = pos_.step_in_epoch > 0;
  if (mid_epoch && has_tensor(state, "run.rng_state")) resume_rng_ = find_tensor(state, "run.rng_state", state_file_);
  const bool redraws = mid_epoch && !resume_rng_.defined() && cfg_.peft == PeftKind::lora && cfg_.lora_dropout > 0;
  start_.note += fmt::format(" with its training state ({} at mini-epoch {}, step {}{})",
                            redraws ? "resumed" : "exact resume", pos_.epoch_begin + pos_.epoch_in_run,
                            pos_.step_in_epoch, redraws ? "; LoRA dropout masks of this mini-epoch redrawn" : "");
  if (!saved_as.empty()) start_.note += fmt::format(" (saved {}, resharded)", saved_as);
  return state;
}

// The state must belong to the checkpoint it resumes (weights digest), to this config
// (mini-epoch size, precision) and be a position that checkpoint can have; else stop and say so.
RunPosition Run::checked_position(const StateDict& state) const {
  auto refuse = [&](const std::string& why) {
    return CheckpointError(fmt::format("{}: {}. Resume from the weights alone with exact_resume: 0, or remove it",
                                       state_file_, why));
  };
  if (!has_tensor(state, "run.epoch_begin")) throw refuse("it holds no run position (not a training state file)");
  RunPosition p;
  p.load_state_dict(state, state_file_);
  if (p.epoch_steps != cfg_.steps_per_epoch()) {
    const auto saved = [&](const char* key) { return find_tensor(state, key, state_file_).item<int64_t>(); };
    const std::string made_by =  // (a state from before these entries names the steps alone)
        has_tensor(state, "run.devices")
            ? fmt::format(" by micro_bsz x accumulate_grad_batches x devices = {} x {} x {}", saved("run.micro_bsz"),
                          saved("run.accumulate_grad_batches"), saved("run.devices"))
            : "";
    throw refuse(fmt::format("it was made with {} steps per mini-epoch{}, this config has {} (epoch_samples / (micro_bsz x "
                             "accumulate_grad_batches x devices) = {} / ({} x {} x {})); resume with the same global batch",
                             p.epoch_steps, made_by, cfg_.steps_per_epoch(), cfg_.epoch_samples, cfg_.micro_bsz,
                             cfg_.accumulate_grad_batches, cfg_.devices));
  }
  const std::string where = implausible_position(p, start_.epoch_begin, cfg_.steps_per_epoch());
  if (!where.empty()) throw refuse(where);
  bool unpaired = false;
  const std::string fault = checkpointer_->pairing_fault(state, start_.weights, start_.load_path, &unpaired);
  if (!fault.empty()) throw refuse(fault);
  if (unpaired && rank0_)  // written before the pairing checks existed
    std::fprintf(stderr, "warning: %s predates the pairing checks (no weights digest); trusting it\n", state_file_.c_str());
  return p;
}

// The model on its device and dtype; with several processes, every rank starts from rank 0's
// weights and the gradients are averaged (buckets) or sharded (ZeRO-1).
void Run::build_model() {
  model_->to(device_, compute_dtype(cfg_));
  model_->gradient_checkpointing = cfg_.grad_cp == 1;
  model_->use_fused_ops(cfg_.fused_ops == 1);
  model_->doc_reset = cfg_.doc_reset == 1;
  model_->train();
  if (!comm_) return;
  for (auto& p : model_->parameters()) comm_->broadcast(p, 0);
  // (micro-batches and long context's chunks each back-propagate: a gradient is final only after
  // the last one)
  if (!sharded_)
    comm_->attach_gradient_buckets(model_, /*overlap_backward=*/cfg_.chunk_ctx == 0 && cfg_.accumulate_grad_batches == 1);
}

void Run::build_optimizer(const StateDict& training_state) {
  if (sharded_) {
    zero_ = std::make_unique<ShardedParameters>(*comm_, model_, cfg_.zero_stage);
    if (cfg_.zero_stage == 3) model_->gathering = zero_.get();
  }
  const std::vector<bool> owned = zero_ ? zero_->owned() : std::vector<bool>{};
  optimizer_ = std::make_unique<SeedOptimizer>(
      model_, OptimizerSettings{cfg_.lr_init, cfg_.beta1, cfg_.beta2, cfg_.adam_eps, cfg_.weight_decay}, owned);
  if (!training_state.empty()) {
    try {
      optimizer_->load_state_dict(training_state);
    } catch (const std::exception& e) {
      throw CheckpointError(fmt::format("{}: does not fit this model ({}). Resume from the weights alone with "
                                        "exact_resume: 0", state_file_, e.what()));
    }
  }
  if (sharded_)
    global_sum_of_squares_ = [this](double local) {
      at::Tensor t = at::tensor({local}, collective_options());
      comm_->allreduce_sum(t);
      return t.item<double>();
    };
}

Batch Run::batch(int64_t epoch, int64_t step_in_epoch) const {
  if (cfg_.dataload == DataLoad::pad) return document_batch(epoch, step_in_epoch);
  at::Tensor tokens = at::empty({cfg_.samples_per_step(), cfg_.ctx_len + 1}, at::kLong);
  for (int64_t j = 0; j < cfg_.samples_per_step(); ++j) {
    const uint64_t idx = step_in_epoch * cfg_.samples_per_step() + j;
    const uint64_t offset = sample_offset(cfg_.magic_prime, cfg_.ctx_len, cfg_.epoch_samples, epoch, idx,
                                          env_.rank, cfg_.devices);
    data_->read(offset, cfg_.ctx_len + 1, tokens[j].data_ptr<int64_t>());
  }
  return {tokens.slice(1, 0, cfg_.ctx_len), tokens.slice(1, 1, cfg_.ctx_len + 1)};
}

// RWKV-PEFT's dataload pad: sample j of this rank's step is document number
// (g * devices + rank) mod n_docs, g = (epoch * epoch_steps + step) * samples_per_step + j counting from
// the first mini-epoch (in file order with data_shuffle 0; else through a random permutation of the
// documents, seeded by random_seed and the pass over them). Targets past the document's end are -100:
// the loss ignores them.
Batch Run::document_batch(int64_t epoch, int64_t step_in_epoch) const {
  const int64_t L = cfg_.ctx_len + 1;
  const uint64_t n_docs = data_->num_documents();
  at::Tensor tokens = at::empty({cfg_.samples_per_step(), L}, at::kLong);
  at::Tensor targets_valid = at::empty({cfg_.samples_per_step()}, at::kLong);
  for (int64_t j = 0; j < cfg_.samples_per_step(); ++j) {
    const uint64_t g =
        static_cast<uint64_t>((epoch * cfg_.steps_per_epoch() + step_in_epoch) * cfg_.samples_per_step() + j);
    const uint64_t n = g * static_cast<uint64_t>(cfg_.devices) + static_cast<uint64_t>(env_.rank);
    uint64_t doc = n % n_docs;
    if (cfg_.data_shuffle == 1) {
      const uint64_t pass = n / n_docs;
      if (!shuffled_ || shuffled_pass_ != pass) {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(std::max<int64_t>(cfg_.random_seed, 0)) * kSeedStride + pass);
        shuffled_ = std::make_unique<at::Tensor>(at::randperm(static_cast<int64_t>(n_docs), gen, at::kLong));
        shuffled_pass_ = pass;
      }
      doc = static_cast<uint64_t>(shuffled_->data_ptr<int64_t>()[doc]);
    }
    targets_valid[j] = static_cast<int64_t>(data_->read_document(doc, L, tokens[j].data_ptr<int64_t>())) - 1;
  }
  at::Tensor y = tokens.slice(1, 1, L).clone();
  const at::Tensor position = at::arange(cfg_.ctx_len, at::kLong).unsqueeze(0);
  y.masked_fill_(position >= targets_valid.unsqueeze(1), -100);
  return {tokens.slice(1, 0, cfg_.ctx_len), y};
}

StepResult Run::step(const Batch& batch, double lr, int stop_signal, bool timed) {
  StepResult r;
  optimizer_->set_lr(lr);
  const double t0 = timed ? synced_seconds(device_) : now_seconds();
  // forward, loss
  const at::Tensor x = batch.x.to(device_), y = batch.y.to(device_);
  double t1 = t0;
  const LossOptions loss_options{cfg_.head_chunk, fused_loss_};
  if (cfg_.accumulate_grad_batches > 1 || cfg_.chunk_ctx > 0) {
    // the batch in parts: micro-batches of micro_bsz, each whole or (long context) chunk by chunk,
    // each part's loss scaled by the whole batch's counts (forward and backward interleave: their
    // time counts as backward's)
    const BatchCounts counts = batch_counts(y);
    for (int64_t i = 0; i < x.size(0); i += cfg_.micro_bsz) {
      const at::Tensor xs = x.slice(0, i, i + cfg_.micro_bsz), ys = y.slice(0, i, i + cfg_.micro_bsz);
      if (cfg_.chunk_ctx > 0) {
        r.loss += long_context_forward_backward(model_, xs, ys, {cfg_.chunk_ctx, cfg_.bptt, loss_options}, counts);
      } else {
        const at::Tensor part = batch_part_loss(model_, model_->hidden(xs), ys, counts, loss_options);
        part.backward();
        r.loss += part.item<double>();
      }
    }
  } else {
    const at::Tensor loss = cfg_.head_chunk > 0
                                ? chunked_head_loss(model_->hidden(x), model_->head->weight, y, cfg_.head_chunk)
                                : cross_entropy_l2wrap(model_->forward(x), y, fused_loss_);
    t1 = timed ? synced_seconds(device_) : t0;
    // backward
    loss.backward();
    r.loss = loss.item<double>();
  }
  const double t2 = timed ? synced_seconds(device_) : t0;
  r.stop = stop_signal != 0;
  r.stop_signal = stop_signal;
  if (comm_) {  // mean gradient and loss over ranks; any rank's stop request stops them all
    if (zero_) zero_->finish_gradients([this](size_t k) -> at::Tensor& { return optimizer_->master(k); });
    else comm_->finish_gradients();
    at::Tensor shared =
        at::tensor({r.loss, stop_signal ? 1.0 : 0.0, static_cast<double>(stop_signal)}, collective_options());
    comm_->allreduce_sum(shared);
    r.loss = shared[0].item<double>() / env_.world;
    const int64_t asking = std::llround(shared[1].item<double>()), signal_sum = std::llround(shared[2].item<double>());
    r.stop = asking > 0;
    // the ranks that asked all got the same signal exactly when the sum is that many times one of them
    r.stop_signal = asking > 0 && signal_sum % asking == 0 && (stop_signal == 0 || signal_sum == asking * stop_signal)
                        ? static_cast<int>(signal_sum / asking) : 0;
  }
  // clip, step: a non-finite loss or gradient skips the update
  if (on_gradients) on_gradients(model_);
  r.grad_norm = optimizer_->clip_gradients(cfg_.grad_clip, global_sum_of_squares_);
  r.skipped = !std::isfinite(r.loss) || !std::isfinite(r.grad_norm);
  if (!r.skipped) optimizer_->step();
  if (!r.skipped && zero_ && cfg_.zero_stage < 3) zero_->broadcast_updated_weights();
  if (zero_) zero_->release_all();  // (ZeRO-3: whatever a unit still held)
  optimizer_->zero_grad();
  const double t3 = timed ? synced_seconds(device_) : now_seconds();
  r.forward_ms = (t1 - t0) * 1e3;
  r.backward_ms = (t2 - t1) * 1e3;
  r.optimizer_ms = (t3 - t2) * 1e3;
  r.step_ms = (t3 - t0) * 1e3;
  return r;
}

double Run::validate() {
  at::NoGradGuard no_grad;
  double sum = 0;
  for (int64_t i = 0; i < val_windows_.size(0); i += cfg_.micro_bsz) {
    const at::Tensor w = val_windows_.slice(0, i, std::min(i + cfg_.micro_bsz, val_windows_.size(0))).to(device_);
    const int64_t T = w.size(1) - 1;
    // long context: the windows in chunks too, carrying the states (memory of one chunk)
    const int64_t L = cfg_.chunk_ctx > 0 ? cfg_.chunk_ctx : T;
    ModelState state = training_start_state(model_, w.size(0));
    for (int64_t t0 = 0; t0 < T; t0 += L) {
      const at::Tensor tokens = w.slice(1, t0, t0 + L);
      const at::Tensor logits = cfg_.chunk_ctx > 0 ? model_->head(model_->hidden(tokens, state)) : model_->forward(tokens);
      sum += at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}).to(at::kFloat),
                                    w.slice(1, t0 + 1, t0 + L + 1).reshape({-1}), {}, at::Reduction::Sum)
                 .item<double>();
    }
  }
  if (zero_) zero_->release_all();
  return sum / (val_windows_.size(0) * (val_windows_.size(1) - 1));
}

void Run::seed_randomness(int64_t epoch) {
  if (resume_rng_.defined()) {
    at::Generator gen = default_generator(device_);
    std::lock_guard<std::mutex> hold(gen.mutex());
    gen.set_state(resume_rng_);
    resume_rng_ = at::Tensor();
    return;
  }
  if (cfg_.random_seed < 0) return;
  at::manual_seed(static_cast<uint64_t>(cfg_.random_seed) * kSeedStride + static_cast<uint64_t>(epoch) * 1009 +
                  static_cast<uint64_t>(env_.rank));
}

std::vector<double> Run::from_every_rank(double value) {
  if (!comm_) return {value};
  at::Tensor mine = at::tensor({value}, collective_options()), all = at::empty({env_.world}, collective_options());
  comm_->allgather(all, mine);
  const at::Tensor host = all.cpu();
  return std::vector<double>(host.data_ptr<double>(), host.data_ptr<double>() + env_.world);
}

StateDict Run::saved_weights() {
  if (zero_ && cfg_.zero_stage == 3) return zero_->gathered_weights();
  return cfg_.fine_tuning() ? trained_tensors(model_, cfg_.peft_options()) : model_->state_dict();
}

void Run::save(const std::string& checkpoint, bool with_state) {
  const bool finite = zero_ ? zero_->held_weights_finite() : all_finite(model_);
  agreed([&] {
    if (!finite) throw std::runtime_error("the weights are no longer finite; not saving " + checkpoint);
  });
  const StateDict weights = saved_weights();
  int64_t digest = weights_digest(weights);
  if (zero_ && cfg_.zero_stage == 3) {  // rank 0 alone holds the whole weights
    at::Tensor shared = at::tensor({digest}, at::TensorOptions().dtype(at::kLong).device(device_));
    comm_->broadcast(shared, 0);
    digest = shared.item<int64_t>();
  }
  checkpointer_->save(checkpoint, weights, digest, with_state);
}

}  // namespace rwkv7
