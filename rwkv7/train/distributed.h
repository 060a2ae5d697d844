// Data-parallel training on PyTorch's own distributed engine (c10d): a TCPStore for the
// rendezvous and ProcessGroupGloo on CPUs (ProcessGroupNCCL on GPUs is the same interface;
// see docs/distributed.md). Processes start torchrun-style: RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT. c10d stays inside distributed.cpp.
#pragma once
#include <ATen/core/Tensor.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rwkv7/model/model.h"

namespace rwkv7 {

struct DistEnv {
  int64_t rank = 0, world = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int port = 29500;
  // torchrun (torchelastic) only. agent_store: TORCHELASTIC_USE_AGENT_STORE=True, torchrun's agent
  // already serves the store on MASTER_PORT and keeps it across restarts, so every rank connects
  // as a client. restart_count (TORCHELASTIC_RESTART_COUNT) and run_id (TORCHELASTIC_RUN_ID) name
  // this attempt: its keys go under their own prefix, never meeting an earlier attempt's.
  bool agent_store = false;
  int64_t restart_count = 0;
  std::string run_id;
  bool enabled() const { return world > 1; }
};

// From the environment; throws std::runtime_error naming a malformed variable.
DistEnv dist_env_from_environment();

class Communicator {
 public:
  // Rendezvous with the other ranks (every collective and the rendezvous time out after
  // `timeout`, so a dead rank ends the others with an error instead of a hang): connect to the
  // store (rank 0 hosts it, unless torchrun's agent does), wait until every rank has arrived, then
  // connect the process group, all within `timeout` (plus at most a few seconds).
  // cuda: NCCL (tensors on this process's GPU, cuda:LOCAL_RANK); else Gloo (CPU tensors).
  Communicator(const DistEnv& env, std::chrono::seconds timeout, bool cuda = false);
  ~Communicator();

  int64_t rank() const { return env_.rank; }
  int64_t world() const { return env_.world; }

  void allreduce_sum(at::Tensor& t);                                   // in place
  void reduce_scatter_sum(at::Tensor& out, at::Tensor& in);            // in: world x out
  void allgather(at::Tensor& out, at::Tensor& in);                     // out: world x in
  void broadcast(at::Tensor& t, int64_t root);
  void barrier();
  // How many collectives the process group has run (its sequence number): a test's proof that a
  // collective ran, where its result alone cannot tell (all-reduce and broadcast over one rank).
  uint64_t collectives_run() const;

  // Gradient averaging that overlaps the backward pass: each parameter's gradient is copied
  // into a bucket as autograd produces it; a full bucket's all-reduce starts at once (Gloo
  // runs it on its own threads). finish_gradients() completes the rest, waits, and leaves the
  // mean gradient over ranks in every parameter's .grad.
  // Without `overlap_backward` (a step of several backward passes, long context) nothing happens
  // during the backward: finish_gradients() copies every .grad into the buckets and reduces them.
  void attach_gradient_buckets(RWKV& model, bool overlap_backward = true, int64_t bucket_elements = int64_t(1) << 22);
  void finish_gradients();

  // Started, not yet finished: each returns the function that waits for it (a lost rank: the same
  // one-line error as the collectives above). ZeRO's owners (sharded_params.h) use them.
  using Pending = std::function<void()>;
  Pending reduce_sum_async(at::Tensor& t, int64_t root);  // the sum over ranks lands in root's t
  Pending broadcast_async(at::Tensor& t, int64_t root);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DistEnv env_;
};

}  // namespace rwkv7
