#include "rwkv7/train/sharded_params.h"

#include <ATen/ATen.h>
#include <c10/core/StorageImpl.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <stdexcept>

namespace rwkv7 {

namespace {

constexpr size_t kMaxBucketsInFlight = 2;  // bounds the gradient memory in transit

// Runs `fn` after autograd has accumulated a parameter's gradient of a backward pass into .grad.
struct AfterAccumulate : torch::autograd::PostAccumulateGradHook {
  explicit AfterAccumulate(std::function<void()> f) : fn(std::move(f)) {}
  void operator()(const torch::autograd::Variable&) override { fn(); }
  std::function<void()> fn;
};

// The unit a parameter belongs to, by its name (see WeightGathering).
int64_t unit_of_name(const std::string& name, int64_t n_layer) {
  if (name.rfind("emb.", 0) == 0) return WeightGathering::kEmbedding;
  if (name.rfind("blocks.", 0) == 0) return std::stoll(name.substr(7, name.find('.', 7) - 7));
  return WeightGathering::head_unit(n_layer);
}

// A weight's memory comes and goes while the tensor (shape, autograd identity, hooks, the
// graph's references) stays: its storage is given `bytes` (contents undefined until written) or
// none, as FSDP does by resizing the storage.
void set_storage_bytes(const at::Tensor& t, size_t bytes) {
  c10::StorageImpl* s = t.unsafeGetTensorImpl()->storage().unsafeGetStorageImpl();
  if (s->nbytes() == bytes) return;
  s->set_data_ptr_noswap(bytes ? s->allocator()->allocate(bytes) : at::DataPtr(nullptr, s->device()));
  s->set_nbytes(bytes);
}

}  // namespace

ShardedParameters::ShardedParameters(Communicator& comm, RWKV& model, int64_t stage, int64_t bucket_elements)
    : comm_(comm), stage_(stage), rank_(comm.rank()), world_(comm.world()), n_layer_(model->shape.n_layer) {
  if (stage < 1 || stage > 3) throw std::invalid_argument(fmt::format("zero_stage {} is not 1, 2 or 3", stage));
  for (const auto& p : model->named_parameters()) {
    if (!p.value().requires_grad())
      throw std::invalid_argument("ZeRO shards trained parameters only; " + p.key() + " is frozen");
    names_.push_back(p.key());
    params_.push_back(p.value());
  }
  const size_t n = params_.size();
  // owners: largest first, each to the least-loaded rank (deterministic, so every rank agrees)
  std::vector<int64_t> load(world_, 0);
  owner_.assign(n, 0);
  std::vector<size_t> order(n);
  for (size_t k = 0; k < n; ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return params_[a].numel() > params_[b].numel(); });
  for (size_t k : order) {
    owner_[k] = std::min_element(load.begin(), load.end()) - load.begin();
    load[owner_[k]] += params_[k].numel();
  }
  owned_.resize(n);
  for (size_t k = 0; k < n; ++k) owned_[k] = owner_[k] == rank_;
  // buckets of one owner each, in the order autograd makes the gradients (last layers first)
  bucket_of_.assign(n, 0);
  offset_.assign(n, 0);
  slot_.assign(n, 0);
  std::vector<int64_t> open(world_, -1);  // each owner's bucket being laid out
  for (size_t k = n; k-- > 0;) {
    int64_t& b = open[owner_[k]];
    if (b < 0 || (buckets_[b].numel > 0 && buckets_[b].numel + params_[k].numel() > bucket_elements)) {
      buckets_.push_back(GradBucket{owner_[k], {}, 0, 0, {}, {}});
      b = static_cast<int64_t>(buckets_.size()) - 1;
    }
    GradBucket& bucket = buckets_[b];
    bucket_of_[k] = b;
    offset_[k] = bucket.numel;
    slot_[k] = static_cast<int64_t>(bucket.params.size());
    bucket.params.push_back(k);
    bucket.numel += params_[k].numel();
  }
  for (auto& b : buckets_) {
    b.waiting = static_cast<int64_t>(b.params.size());
    b.arrived.assign(b.params.size(), 0);
  }
  owned_grad_.resize(n);
  had_grad_.assign(n, 0);
  // stage 2 and 3: each gradient leaves for its owner once accumulated, and is dropped here
  if (stage_ >= 2) {
    for (size_t k = 0; k < n; ++k)
      torch::autograd::impl::set_post_acc_grad_hooks(params_[k], std::make_unique<AfterAccumulate>([this, k] {
        std::lock_guard<std::recursive_mutex> lock(mutex_);
        add_gradient(k, params_[k].grad());
        params_[k].mutable_grad() = at::Tensor();
        if (stage_ == 3) {  // the graph's last use of the weight is behind us
          wait_pending(unit_of_[k]);
          if (!owned_[k]) free_weight(k);
          unit(unit_of_[k]).complete = false;  // (on every rank alike: the next use gathers)
        }
      }));
  }
  unit_of_.assign(n, 0);
  bytes_.assign(n, 0);
  units_.resize(static_cast<size_t>(n_layer_ + 2));
  for (size_t k = 0; k < n; ++k) {
    unit_of_[k] = unit_of_name(names_[k], n_layer_);
    unit(unit_of_[k]).params.push_back(k);
    bytes_[k] = static_cast<size_t>(params_[k].numel()) * params_[k].element_size();
    if (stage_ == 3 && (params_[k].storage_offset() != 0 || params_[k].storage().nbytes() != bytes_[k]))
      throw std::invalid_argument("ZeRO-3 needs each weight in a storage of its own; " + names_[k] + " shares one");
  }
  if (stage_ == 3) {
    for (auto& u : units_) u.complete = true;  // every rank starts with the whole model
    release_all();
  }
}

ShardedParameters::~ShardedParameters() {
  if (stage_ >= 2)
    for (auto& p : params_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

// --- gradients ---------------------------------------------------------------------------------

void ShardedParameters::add_gradient(size_t k, const at::Tensor& grad) {
  if (!grad.defined()) return;
  GradBucket& b = buckets_[bucket_of_[k]];
  if (!b.flat.defined() && b.params.size() == 1 && grad.scalar_type() == at::kFloat && grad.is_contiguous()) {
    b.flat = grad.view({-1});  // a bucket of its own (emb, head): sent as it is, no second copy
  } else {
    if (!b.flat.defined()) b.flat = at::zeros({b.numel}, grad.options().dtype(at::kFloat));
    b.flat.narrow(0, offset_[k], grad.numel()).add_(grad.reshape({-1}));  // (bf16 -> fp32)
  }
  had_grad_[k] = 1;
  char& arrived = b.arrived[slot_[k]];
  if (!arrived) {
    arrived = 1;
    --b.waiting;
  }
  if (b.waiting == 0) launch(bucket_of_[k]);
}

void ShardedParameters::launch(size_t i) {
  GradBucket& b = buckets_[i];
  InFlight f{i, std::move(b.flat), {}};
  b.flat = at::Tensor();
  b.waiting = static_cast<int64_t>(b.params.size());
  std::fill(b.arrived.begin(), b.arrived.end(), 0);
  f.wait = comm_.reduce_sum_async(f.flat, b.owner);
  in_flight_.push_back(std::move(f));
  while (in_flight_.size() > kMaxBucketsInFlight) consume_oldest();
}

void ShardedParameters::consume_oldest() {
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  f.wait();
  const GradBucket& b = buckets_[f.bucket];
  if (b.owner != rank_) return;  // (a non-owner's buffer was only the reduction's scratch)
  // A bucket holds one owner's gradients only: on the owner its buffer becomes their storage.
  at::NoGradGuard no_grad;
  for (size_t k : b.params) {
    if (!had_grad_[k]) continue;
    const at::Tensor part = f.flat.narrow(0, offset_[k], params_[k].numel()).view(params_[k].sizes());
    if (owned_grad_[k].defined()) owned_grad_[k].add_(part);
    else owned_grad_[k] = part;
  }
}

void ShardedParameters::finish_gradients(const std::function<at::Tensor&(size_t)>& master) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  if (stage_ == 1)  // the gradients were kept whole until now
    for (size_t k = params_.size(); k-- > 0;) {
      add_gradient(k, params_[k].grad());
      params_[k].mutable_grad() = at::Tensor();
    }
  // buckets still waiting hold parameters without a gradient this step (layer 0's v0, v1, v2):
  // the same on every rank, since every rank runs the same graph
  for (size_t i = 0; i < buckets_.size(); ++i)
    if (buckets_[i].flat.defined()) launch(i);
  while (!in_flight_.empty()) consume_oldest();
  const double inv_world = 1.0 / static_cast<double>(world_);
  for (size_t k = 0; k < params_.size(); ++k) {
    if (owned_[k] && had_grad_[k]) master(k).mutable_grad() = owned_grad_[k].mul_(inv_world);
    owned_grad_[k] = at::Tensor();
    had_grad_[k] = 0;
  }
}

void ShardedParameters::broadcast_updated_weights() {
  std::vector<Communicator::Pending> pending;
  for (size_t k = 0; k < params_.size(); ++k) pending.push_back(comm_.broadcast_async(params_[k], owner_[k]));
  for (auto& w : pending) w();
}

// --- weights (stage 3) -------------------------------------------------------------------------

void ShardedParameters::materialize(size_t k) { set_storage_bytes(params_[k], bytes_[k]); }
void ShardedParameters::free_weight(size_t k) { set_storage_bytes(params_[k], 0); }

void ShardedParameters::start_gather(int64_t u) {
  Unit& g = unit(u);
  if (g.complete || !g.pending.empty()) return;
  for (size_t k : g.params) {
    if (!owned_[k]) materialize(k);
    g.pending.push_back(comm_.broadcast_async(params_[k], owner_[k]));
  }
}

void ShardedParameters::finish_gather(int64_t u) {
  start_gather(u);
  Unit& g = unit(u);
  for (auto& w : g.pending) w();
  g.pending.clear();
  g.complete = true;
}

void ShardedParameters::wait_pending(int64_t u) {
  Unit& g = unit(u);
  for (auto& w : g.pending) w();
  g.pending.clear();
}

void ShardedParameters::release(int64_t u) {
  wait_pending(u);
  Unit& g = unit(u);
  for (size_t k : g.params)
    if (!owned_[k]) free_weight(k);
  g.complete = false;  // on every rank alike, owner or not: the next use gathers the unit anew
}

void ShardedParameters::before(int64_t u, bool backward) {
  if (stage_ != 3) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  finish_gather(u);
  // the next unit's weights travel while this one computes (the backward needs no embedding)
  const int64_t next = backward ? u - 1 : u + 1;
  if (backward ? next >= 0 : next <= head_unit(n_layer_)) start_gather(next);
}

void ShardedParameters::after(int64_t u, bool) {
  if (stage_ != 3) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  release(u);
}

void ShardedParameters::release_all() {
  if (stage_ != 3) return;
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  for (int64_t u = kEmbedding; u <= head_unit(n_layer_); ++u) release(u);
}

StateDict ShardedParameters::gathered_weights() {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  StateDict out;
  at::NoGradGuard no_grad;
  for (size_t k = 0; k < params_.size(); ++k) {
    const bool held = owned_[k] || unit(unit_of_[k]).complete;
    if (!held) materialize(k);
    comm_.broadcast_async(params_[k], owner_[k])();
    if (rank_ == 0) out.emplace_back(names_[k], params_[k].detach().clone());
    if (!held) free_weight(k);
  }
  return out;
}

bool ShardedParameters::held_weights_finite() const {
  for (size_t k = 0; k < params_.size(); ++k) {
    if (stage_ == 3 && !owned_[k]) continue;
    if (!at::isfinite(params_[k]).all().item<bool>()) return false;
  }
  return true;
}

}  // namespace rwkv7
