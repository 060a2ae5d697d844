#include "rwkv7/train/distributed.h"

#include <ATen/ATen.h>
#ifdef RWKV7_HAS_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef RWKV7_HAS_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace rwkv7 {

namespace {

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end != '\0' || x < 0) throw std::runtime_error(std::string("environment variable ") + name + "='" + v + "' is not a non-negative integer");
  return x;
}

#ifdef RWKV7_HAS_GLOO
// A bucket: parameters laid out back to back in one flat fp32 buffer.
struct Bucket {
  std::vector<size_t> params;  // indices into Impl::params
  at::Tensor flat;
  int64_t pending = 0;         // gradients still to arrive this step
  c10::intrusive_ptr<c10d::Work> work;
};
#endif

}  // namespace

DistEnv dist_env_from_environment() {
  DistEnv e;
  // torchrun's names first; then Slurm's (srun) and Open MPI's (mpirun) own
  const bool torchrun = std::getenv("WORLD_SIZE") != nullptr;
  const bool slurm = !torchrun && std::getenv("SLURM_NTASKS") && std::getenv("SLURM_PROCID");
  const bool ompi = !torchrun && !slurm && std::getenv("OMPI_COMM_WORLD_SIZE");
  e.world = env_int(slurm ? "SLURM_NTASKS" : ompi ? "OMPI_COMM_WORLD_SIZE" : "WORLD_SIZE", 1);
  e.rank = env_int(slurm ? "SLURM_PROCID" : ompi ? "OMPI_COMM_WORLD_RANK" : "RANK", 0);
  e.local_rank = env_int(slurm ? "SLURM_LOCALID" : ompi ? "OMPI_COMM_WORLD_LOCAL_RANK" : "LOCAL_RANK", e.rank);
  if (e.world < 1 || e.rank >= e.world)
    throw std::runtime_error("RANK " + std::to_string(e.rank) + " is not below WORLD_SIZE " + std::to_string(e.world));
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) e.master_addr = a;
  e.port = static_cast<int>(env_int("MASTER_PORT", 29500));
  if (e.port < 1 || e.port > 65535) throw std::runtime_error("MASTER_PORT must be a TCP port");
  if (torchrun) {  // torchelastic's own variables (torchrun sets them; a plain launch does not)
    const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
    const std::string a = agent ? agent : "";
    e.agent_store = a == "True" || a == "true" || a == "1";
    e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0);
    if (const char* id = std::getenv("TORCHELASTIC_RUN_ID"); id && *id) e.run_id = id;
  }
  return e;
}

#ifdef RWKV7_HAS_GLOO
struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> pg;  // Gloo on CPUs, NCCL on GPUs
  std::vector<at::Tensor> params;
  std::vector<int64_t> offset;       // of each parameter in its bucket
  std::vector<int64_t> bucket_of;
  std::vector<Bucket> buckets;
  bool overlap_backward = true;      // hooks fill the buckets during the backward
  std::mutex mutex;                  // hooks may run on autograd's threads

  int64_t rank = 0, timeout_s = 0;
  // Every wait goes through here: a dead or stuck rank becomes one clear error on the others.
  void wait(const c10::intrusive_ptr<c10d::Work>& w, const char* what) {
    try {
      w->wait();
    } catch (const std::exception& e) {  // c10::Error, or Gloo's own (an IoException)
      const auto* c10e = dynamic_cast<const c10::Error*>(&e);
      std::string detail = c10e ? c10e->what_without_backtrace() : e.what();
      detail = detail.substr(0, detail.find('\n'));
      throw std::runtime_error("rank " + std::to_string(rank) + " lost contact with the other processes during " +
                               what + " (one died, or none answered within dist_timeout = " +
                               std::to_string(timeout_s) + " s): " + detail);
    }
  }
  void launch(Bucket& b) {
    std::vector<at::Tensor> t{b.flat};
    b.work = pg->allreduce(t);
  }
};

namespace {

// The keys of this attempt. torchrun's agent keeps one store for the whole job, restarts
// included; without a prefix per attempt a restarted rank could read the address a killed rank
// of the attempt before published and connect to it (Gloo: "Connect timeout", or a hang).
std::string attempt_prefix(const DistEnv& env) {
  return "rwkv7/" + (env.run_id.empty() ? std::string() : env.run_id + "/") + "attempt-" +
         std::to_string(env.restart_count);
}

// Waits until host:port accepts a TCP connection (true), or `deadline` passes (false). LibTorch's
// own client connect would wait up to about 2.5 times its timeout, logging a backtrace at each
// retry; after this, it connects at once.
bool wait_until_listening(const std::string& host, int port, std::chrono::steady_clock::time_point deadline) {
  using namespace std::chrono;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  for (;;) {
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) == 0) {
      bool up = false;
      for (addrinfo* a = found; a && !up; a = a->ai_next) {
        const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
          up = true;
        } else if (errno == EINPROGRESS) {  // a remote host: wait a little for the answer
          pollfd p{fd, POLLOUT, 0};
          const auto wait_ms = std::clamp<int64_t>(duration_cast<milliseconds>(deadline - steady_clock::now()).count(), 1, 1000);
          int err = 0;
          socklen_t len = sizeof(err);
          up = ::poll(&p, 1, static_cast<int>(wait_ms)) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
               err == 0;
        }
        ::close(fd);
      }
      ::freeaddrinfo(found);
      if (up) return true;
    }
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(100));
  }
}

// Every rank announces itself and waits, until `deadline`, for all others: a rank that never
// comes is one clear error naming it, and what follows (the process group's own connect) starts
// with everybody there.
void wait_for_all_ranks(c10d::Store& store, const DistEnv& env,
                        std::chrono::steady_clock::time_point deadline, int64_t timeout_s) {
  std::vector<std::string> keys;
  for (int64_t r = 0; r < env.world; ++r) keys.push_back("joined/" + std::to_string(r));
  store.set(keys[env.rank], std::vector<uint8_t>{1});
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  try {
    store.wait(keys, std::max(left, std::chrono::milliseconds(1000)));
  } catch (const c10::Error&) {
    std::string missing;
    int64_t n = 0;
    for (int64_t r = 0; r < env.world; ++r) {
      if (store.check({keys[r]})) continue;
      if (n++ < 8) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    }
    if (n > 8) missing += ", ...";
    throw std::runtime_error("rank " + std::to_string(env.rank) + " waited dist_timeout = " +
                             std::to_string(timeout_s) + " s at " + env.master_addr + ":" +
                             std::to_string(env.port) + " for the other processes; " +
                             (n ? "rank(s) " + missing + " never came" : "they came too late"));
  }
}

}  // namespace

Communicator::Communicator(const DistEnv& env, std::chrono::seconds timeout, bool cuda)
    : impl_(std::make_unique<Impl>()), env_(env) {
  using std::chrono::milliseconds;
  impl_->rank = env.rank;
  impl_->timeout_s = timeout.count();
  const auto ms = std::chrono::duration_cast<milliseconds>(timeout);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.port);
  // Under torchrun the agent serves the store on MASTER_PORT: binding it again would fail (and
  // LibTorch would log that as an error); rank 0 hosts it only for other launchers.
  so.isServer = env.rank == 0 && !env.agent_store;
  so.waitWorkers = false;  // wait_for_all_ranks waits, under this attempt's prefix
  so.timeout = ms;
  if (!so.isServer && !wait_until_listening(env.master_addr, env.port, deadline))
    throw std::runtime_error("rank " + std::to_string(env.rank) + " waited dist_timeout = " +
                             std::to_string(timeout.count()) + " s for the store at " + env.master_addr + ":" +
                             std::to_string(env.port) + " (served by " +
                             (env.agent_store ? "torchrun's agent" : "rank 0") + "); nothing answered there");
  try {
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    impl_->store = c10::make_intrusive<c10d::PrefixStore>(attempt_prefix(env), tcp);
    wait_for_all_ranks(*impl_->store, env, deadline, timeout.count());
    if (cuda) {
#ifdef RWKV7_HAS_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = ms;
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, static_cast<int>(env.rank),
                                                             static_cast<int>(env.world), opts);
#else
      throw std::runtime_error("this build has no NCCL (LibTorch without CUDA, or no nccl.h)");
#endif
    } else {
      // Gloo waits up to 5 times its timeout for a pair's first connection; give it a fifth of
      // what is left (at least 1 s), so that dist_timeout bounds the whole rendezvous, then the
      // full dist_timeout for every collective.
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      auto opts = c10d::ProcessGroupGloo::Options::create(std::max(left / 5, milliseconds(1000)));
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, static_cast<int>(env.rank),
                                                             static_cast<int>(env.world), opts);
      gloo->setTimeout(ms);
      impl_->pg = gloo;
    }
    impl_->pg->setSequenceNumberForGroup();
  } catch (const c10::Error& e) {
    std::string detail = e.what_without_backtrace();
    throw std::runtime_error("rank " + std::to_string(env.rank) + " could not meet the other " +
                             std::to_string(env.world - 1) + " process(es) at " + env.master_addr + ":" +
                             std::to_string(env.port) + " (dist_timeout = " + std::to_string(timeout.count()) +
                             " s): " + detail.substr(0, detail.find('\n')));
  }
}

Communicator::~Communicator() = default;

void Communicator::allreduce_sum(at::Tensor& t) {
  std::vector<at::Tensor> v{t};
  impl_->wait(impl_->pg->allreduce(v), "all-reduce");
}

void Communicator::reduce_scatter_sum(at::Tensor& out, at::Tensor& in) {
  impl_->wait(impl_->pg->_reduce_scatter_base(out, in), "reduce-scatter");
}

void Communicator::allgather(at::Tensor& out, at::Tensor& in) {
  impl_->wait(impl_->pg->_allgather_base(out, in), "all-gather");
}

void Communicator::broadcast(at::Tensor& t, int64_t root) {
  std::vector<at::Tensor> v{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  impl_->wait(impl_->pg->broadcast(v, o), "broadcast");
}

void Communicator::barrier() { impl_->wait(impl_->pg->barrier(), "barrier"); }
uint64_t Communicator::collectives_run() const { return impl_->pg->getSequenceNumberForGroup(); }

void Communicator::attach_gradient_buckets(RWKV& model, bool overlap_backward, int64_t bucket_elements) {
  Impl& m = *impl_;
  m.params.clear();  // the trained ones: a frozen (fine-tuning) weight has no gradient to average
  for (const auto& p : model->parameters())
    if (p.requires_grad()) m.params.push_back(p);
  m.offset.assign(m.params.size(), 0);
  m.bucket_of.assign(m.params.size(), 0);
  // Reverse order: autograd makes the last layers' gradients first, so buckets fill in turn.
  for (size_t k = m.params.size(); k-- > 0;) {
    if (m.buckets.empty() || m.buckets.back().flat.numel() + m.params[k].numel() > bucket_elements)
      m.buckets.push_back(Bucket{{}, at::zeros({0}, m.params[k].options().dtype(at::kFloat)), 0, {}});
    Bucket& b = m.buckets.back();
    m.offset[k] = b.flat.numel();
    m.bucket_of[k] = static_cast<int64_t>(m.buckets.size()) - 1;
    b.params.push_back(k);
    b.flat = at::zeros({b.flat.numel() + m.params[k].numel()}, b.flat.options());
  }
  for (auto& b : m.buckets) b.pending = static_cast<int64_t>(b.params.size());
  m.overlap_backward = overlap_backward;
  if (!overlap_backward) return;
  for (size_t k = 0; k < m.params.size(); ++k) {
    m.params[k].register_hook([this, k](const at::Tensor& grad) {
      Impl& mm = *impl_;
      std::lock_guard<std::mutex> lock(mm.mutex);
      Bucket& b = mm.buckets[mm.bucket_of[k]];
      b.flat.narrow(0, mm.offset[k], grad.numel()).copy_(grad.reshape({-1}));
      if (--b.pending == 0) mm.launch(b);
    });
  }
}

void Communicator::finish_gradients() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mutex);
  for (auto& b : m.buckets) {
    if (b.pending > 0) {  // parameters without a gradient this step (e.g. layer 0's v0/v1/v2)
      for (size_t k : b.params) {
        const at::Tensor& g = m.params[k].grad();
        if (!g.defined()) b.flat.narrow(0, m.offset[k], m.params[k].numel()).zero_();
        else if (!m.overlap_backward) b.flat.narrow(0, m.offset[k], g.numel()).copy_(g.reshape({-1}));
      }
      m.launch(b);
    }
  }
  const double inv = 1.0 / static_cast<double>(env_.world);
  at::NoGradGuard no_grad;
  for (auto& b : m.buckets) {
    m.wait(b.work, "gradient all-reduce");
    b.work.reset();
    b.flat.mul_(inv);
    for (size_t k : b.params) {
      at::Tensor& p = m.params[k];
      if (!p.grad().defined()) continue;  // no gradient on any rank (the same graph everywhere)
      p.mutable_grad().copy_(b.flat.narrow(0, m.offset[k], p.numel()).view(p.sizes()));
    }
    b.pending = static_cast<int64_t>(b.params.size());
  }
}

Communicator::Pending Communicator::reduce_sum_async(at::Tensor& t, int64_t root) {
  std::vector<at::Tensor> v{t};
  c10d::ReduceOptions o;
  o.rootRank = root;
  auto work = impl_->pg->reduce(v, o);
  return [this, work] { impl_->wait(work, "gradient reduce"); };
}

Communicator::Pending Communicator::broadcast_async(at::Tensor& t, int64_t root) {
  std::vector<at::Tensor> v{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  auto work = impl_->pg->broadcast(v, o);
  return [this, work] { impl_->wait(work, "weight broadcast"); };
}

#else  // built without Gloo's headers: a clear error when several processes are asked for

struct Communicator::Impl {};
Communicator::Communicator(const DistEnv& env, std::chrono::seconds, bool) : env_(env) {
  throw std::runtime_error("this build has no data-parallel support (it was built without libgloo-dev)");
}
Communicator::~Communicator() = default;
void Communicator::allreduce_sum(at::Tensor&) {}
void Communicator::reduce_scatter_sum(at::Tensor&, at::Tensor&) {}
void Communicator::allgather(at::Tensor&, at::Tensor&) {}
void Communicator::broadcast(at::Tensor&, int64_t) {}
uint64_t Communicator::collectives_run() const { return 0; }
void Communicator::barrier() {}
void Communicator::attach_gradient_buckets(RWKV&, bool, int64_t) {}
void Communicator::finish_gradients() {}
Communicator::Pending Communicator::reduce_sum_async(at::Tensor&, int64_t) { return [] {}; }
Communicator::Pending Communicator::broadcast_async(at::Tensor&, int64_t) { return [] {}; }

#endif
}  // namespace rwkv7
