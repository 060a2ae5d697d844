// The caching CPU allocator (rwkv7/train/cpu_block_cache.h): which blocks it keeps and reuses, when
// it gives them back, and that training steps through it are the same steps, bit for bit, with no
// new block after the first steps. (Each test is its own process: the cache, once installed, stays.)
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "golden.h"
#include "rwkv7/train/config.h"
#include "rwkv7/train/cpu_block_cache.h"
#include "rwkv7/train/run.h"

namespace rwkv7 {
namespace {

constexpr int64_t MiB = int64_t(1) << 20;

at::Tensor block(int64_t bytes) { return at::empty({bytes}, at::kByte); }

TEST(CpuBlockCache, AFreedLargeBlockServesTheNextRequestOfItsSize) {
  install_cpu_block_cache();
  const CpuCacheStats before = cpu_block_cache_stats();
  const void* first = nullptr;
  {
    at::Tensor t = block(3 * MiB);
    first = t.data_ptr();
    EXPECT_EQ(cpu_block_cache_stats().in_use_bytes - before.in_use_bytes, 4 * MiB);  // rounded up to 2 MiB
  }
  EXPECT_EQ(cpu_block_cache_stats().idle_bytes - before.idle_bytes, 4 * MiB);
  at::Tensor again = block(4 * MiB);  // the same size class
  EXPECT_EQ(again.data_ptr(), first);
  EXPECT_EQ(cpu_block_cache_stats().hits - before.hits, 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(again.data_ptr()) % (2 * MiB), 0u);
}

TEST(CpuBlockCache, SmallBlocksAreNotKept) {
  install_cpu_block_cache();
  const CpuCacheStats before = cpu_block_cache_stats();
  { at::Tensor t = block(MiB - 1); }
  const CpuCacheStats after = cpu_block_cache_stats();
  EXPECT_EQ(after.in_use_bytes, before.in_use_bytes);
  EXPECT_EQ(after.idle_bytes, before.idle_bytes);
  EXPECT_EQ(after.misses + after.hits, before.misses + before.hits);
}

TEST(CpuBlockCache, ALargerIdleBlockServesWhenItWastesAQuarterAtMost) {
  install_cpu_block_cache();
  const void* ten = nullptr;
  {
    at::Tensor t = block(10 * MiB);
    ten = t.data_ptr();
  }
  {
    at::Tensor six = block(6 * MiB);  // would waste 40% of the 10 MiB block: a new one
    EXPECT_NE(six.data_ptr(), ten);
  }
  at::Tensor eight = block(8 * MiB);  // wastes 20%
  EXPECT_EQ(eight.data_ptr(), ten);
}

TEST(CpuBlockCache, IdleBlocksGoBackWhenTheyOutweighThePeakInUse) {
  install_cpu_block_cache();
  block(20 * MiB);  // peak in use 20 MiB, then idle
  {
    at::Tensor two = block(2 * MiB);  // a miss (the 20 MiB block would waste 90%), 20 MiB idle: kept
    EXPECT_EQ(cpu_block_cache_stats().idle_bytes, 20 * MiB);
  }
  EXPECT_EQ(cpu_block_cache_stats().peak_in_use_bytes, 20 * MiB);
  EXPECT_EQ(cpu_block_cache_stats().idle_bytes, 22 * MiB);
  at::Tensor four = block(4 * MiB);  // a miss with 22 MiB idle > 20 MiB: all given back first
  EXPECT_EQ(cpu_block_cache_stats().idle_bytes, 0);
  EXPECT_EQ(cpu_block_cache_stats().in_use_bytes, 4 * MiB);
  four = at::Tensor();
  EXPECT_EQ(cpu_block_cache_stats().idle_bytes, 4 * MiB);
  release_idle_cpu_blocks();
  EXPECT_EQ(cpu_block_cache_stats().idle_bytes, 0);
}

// A bf16 model whose logits (8 x 128 x 1024 x 2 bytes) and fp32 gradient copies pass 1 MiB.
TrainConfig small_bf16(bool cache) {
  const std::string yaml = "proj_dir: " + testing::scratch_dir("cpu_cache") +
                           "\nvocab_size: 1024\nctx_len: 128\nn_layer: 2\nn_embd: 128\nhead_size: 32\n"
                           "micro_bsz: 8\nprecision: bf16\nlr_init: 1e-3\nlr_final: 1e-3\ndevice: cpu\n"
                           "random_seed: 1\nmy_exit_tokens: 1000000\nmagic_prime: 0\n";
  return parse_train_config(yaml, "test", {std::string("cpu_cache=") + (cache ? "1" : "0")});
}

std::vector<double> losses(Run& run, int64_t steps, std::vector<int64_t>* misses = nullptr) {
  std::vector<double> out;
  const TrainConfig& cfg = run.config();
  for (int64_t s = 0; s < steps; ++s) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + s);
    const at::Tensor tokens = at::randint(0, cfg.vocab_size, {cfg.micro_bsz, cfg.ctx_len + 1}, gen, at::kLong);
    out.push_back(run.step({tokens.slice(1, 0, cfg.ctx_len), tokens.slice(1, 1, cfg.ctx_len + 1)}, cfg.lr_init).loss);
    if (misses) misses->push_back(cpu_block_cache_stats().misses);
  }
  return out;
}

TEST(CpuBlockCache, TrainingStepsAreTheSameAndStopAskingForNewBlocks) {
  std::vector<double> system;
  {
    rwkv7::Run run(small_bf16(false), rwkv7::Run::Purpose::kBench);
    EXPECT_FALSE(cpu_block_cache_installed());
    system = losses(run, 5);
  }
  rwkv7::Run run(small_bf16(true), rwkv7::Run::Purpose::kBench);
  EXPECT_TRUE(cpu_block_cache_installed());
  std::vector<int64_t> misses;
  const std::vector<double> cached = losses(run, 5, &misses);
  ASSERT_EQ(cached.size(), system.size());
  for (size_t s = 0; s < cached.size(); ++s) EXPECT_EQ(cached[s], system[s]) << "step " << s;
  EXPECT_GT(cpu_block_cache_stats().hits, 0);
  EXPECT_EQ(misses[4], misses[2]) << "steps 3 and 4 still asked the system for blocks";
}

}  // namespace
}  // namespace rwkv7
