// Communicator's gradient buckets in a world of one process (Gloo over a TCPStore on
// 127.0.0.1): the mean over one rank is the gradient itself, so after finish_gradients every
// .grad must be what autograd computed, whatever the bucket size. The multi-process runs
// (tests/python/test_distributed.py) cover the averaging across ranks.
//
// A build without Gloo's headers has no Communicator (its constructor says so); these tests
// are skipped there. (RWKV7_HAS_GLOO is defined for distributed.cpp only, so it cannot guard
// this file.)
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "free_port.h"
#include "golden.h"
#include "rwkv7/model/init.h"
#include "rwkv7/model/model.h"
#include "rwkv7/train/distributed.h"
#include "rwkv7/train/loss.h"

namespace rwkv7 {
namespace {

// Rank 0 of 1; null when this build has no data-parallel support.
std::unique_ptr<Communicator> world_of_one() {
  DistEnv env;  // rank 0, world 1, 127.0.0.1
  env.port = testing::free_port();
  try {
    return std::make_unique<Communicator>(env, std::chrono::seconds(60));
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find("no data-parallel support") != std::string::npos) return nullptr;
    throw;
  }
}

// The seed's init plus noise, so that every used parameter (the zero-initialised LoRA and
// output matrices too) gets a non-zero gradient. 2 layers: layer 0's v0/v1/v2 get none.
RWKV noisy_model() {
  RWKV model(seed_shape(2, 64, 32));
  init_seed_weights(model, 1);
  at::manual_seed(2);
  at::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.add_(at::randn(p.sizes(), at::kFloat) * 0.01);
  return model;
}

void forward_backward(RWKV& model, uint64_t seed) {
  at::manual_seed(seed);
  const at::Tensor idx = at::randint(0, 32, {2, 17}, at::kLong);
  const at::Tensor tgt = at::randint(0, 32, {2, 17}, at::kLong);
  cross_entropy_l2wrap(model->forward(idx), tgt).backward();
}

void clear_gradients(RWKV& model) {
  for (auto& p : model->parameters()) p.mutable_grad() = at::Tensor();
}

// Two steps (the second checks that the buckets are ready again after finish_gradients),
// each against the same model without buckets.
void expect_world_of_one_gradients(int64_t bucket_elements) {
  std::unique_ptr<Communicator> comm = world_of_one();
  if (!comm) GTEST_SKIP() << "this build has no data-parallel support (no Gloo headers)";
  RWKV plain = noisy_model(), bucketed = noisy_model();
  comm->attach_gradient_buckets(bucketed, /*overlap_backward=*/true, bucket_elements);
  const auto names = bucketed->named_parameters().keys();
  for (uint64_t step = 0; step < 2; ++step) {
    forward_backward(plain, 10 + step);
    forward_backward(bucketed, 10 + step);
    // Keep autograd's gradients, then zero them: whatever finish_gradients leaves can only
    // have come through the buckets the hooks filled during backward.
    std::vector<at::Tensor> autograd;
    for (auto& p : bucketed->parameters()) {
      autograd.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
    comm->finish_gradients();
    const auto a = plain->parameters(), b = bucketed->parameters();
    for (size_t k = 0; k < b.size(); ++k) {
      ASSERT_EQ(b[k].grad().defined(), autograd[k].defined()) << names[k] << " step " << step;
      ASSERT_EQ(a[k].grad().defined(), autograd[k].defined()) << names[k] << " step " << step;
      if (!autograd[k].defined()) continue;  // layer 0's v0/v1/v2: no gradient, none made up
      EXPECT_GT(autograd[k].abs().max().item<double>(), 0) << names[k];  // the test sees something
      EXPECT_TRUE(at::equal(b[k].grad(), autograd[k])) << names[k] << " step " << step;
      EXPECT_LE(testing::relative_error(b[k].grad(), a[k].grad()), 1e-6) << names[k] << " step " << step;
    }
    clear_gradients(plain);  // as SeedOptimizer::zero_grad does between steps
    clear_gradients(bucketed);
  }
}

// Over one rank an all-reduce or a broadcast leaves its tensor as it was, whether it ran or not:
// the process group's count of collectives tells.
TEST(GradBuckets, WorldOfOneCollectivesRun) {
  std::unique_ptr<Communicator> comm = world_of_one();
  if (!comm) GTEST_SKIP() << "this build has no data-parallel support (no Gloo headers)";
  const uint64_t before = comm->collectives_run();
  at::Tensor x = at::arange(8, at::kFloat);
  comm->allreduce_sum(x);
  EXPECT_EQ(comm->collectives_run(), before + 1);
  comm->broadcast(x, 0);
  EXPECT_EQ(comm->collectives_run(), before + 2);
  EXPECT_TRUE(at::equal(x, at::arange(8, at::kFloat)));
}

// Long context back-propagates a step in several passes (one per chunk): without overlap the
// buckets are filled from the accumulated .grad by finish_gradients, never by a hook that would
// send the first pass's part alone.
TEST(GradBuckets, WithoutOverlapTheAccumulatedGradientsAreReduced) {
  std::unique_ptr<Communicator> comm = world_of_one();
  if (!comm) GTEST_SKIP() << "this build has no data-parallel support (no Gloo headers)";
  RWKV plain = noisy_model(), deferred = noisy_model();
  comm->attach_gradient_buckets(deferred, /*overlap_backward=*/false, 5000);
  for (uint64_t pass = 0; pass < 2; ++pass) {  // two backward passes accumulate into .grad
    forward_backward(plain, 20 + pass);
    forward_backward(deferred, 20 + pass);
  }
  const uint64_t before = comm->collectives_run();
  comm->finish_gradients();
  EXPECT_GT(comm->collectives_run(), before);  // the buckets went through the all-reduce
  const auto a = plain->parameters(), b = deferred->parameters();
  const auto names = deferred->named_parameters().keys();
  for (size_t k = 0; k < b.size(); ++k) {
    ASSERT_EQ(a[k].grad().defined(), b[k].grad().defined()) << names[k];
    if (a[k].grad().defined()) EXPECT_TRUE(at::equal(b[k].grad(), a[k].grad())) << names[k];
  }
}

// The model has ~140k values; its largest parameter (ffn.key.weight) has 16384.
TEST(GradBuckets, OneBucketForEverything) { expect_world_of_one_gradients(int64_t(1) << 22); }
TEST(GradBuckets, SeveralBuckets) { expect_world_of_one_gradients(5000); }
TEST(GradBuckets, OneBucketPerParameter) { expect_world_of_one_gradients(1); }

}  // namespace
}  // namespace rwkv7
