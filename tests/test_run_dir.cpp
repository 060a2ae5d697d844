// The run folder's rules, on files made here: which files a new start would overwrite, how a
// checkpoint's state is found (plain, all shards, some shards, another sharding), and the lock.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "golden.h"
#include "rwkv7/io/fs.h"
#include "rwkv7/train/config.h"
#include "rwkv7/train/run_dir.h"

namespace rwkv7 {
namespace {

void touch_pth(const std::string& path) { write_pth(path, {{"x", at::ones({1})}}); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(RunDir, FilesANewStartWouldOverwrite) {
  const std::string d = testing::scratch_dir("run_dir_files");
  for (const char* f : {"rwkv-init.pth", "rwkv-0.pth", "rwkv-0.state.pth", "rwkv-3.pth",
                        "rwkv-3.state.rank1-of-2.pth", "rwkv-final.pth", "other.pth"})
    touch_pth(d + "/" + f);
  const RunDir dir(d);
  EXPECT_EQ(dir.earlier_run_files(0, ""),
            (std::vector<std::string>{"rwkv-0.pth", "rwkv-0.state.pth", "rwkv-3.pth", "rwkv-3.state.rank1-of-2.pth",
                                      "rwkv-final.pth"}));
  // continuing from rwkv-0.pth at mini-epoch 1 overwrites only what comes after it
  EXPECT_EQ(dir.earlier_run_files(1, d + "/rwkv-0.pth"),
            (std::vector<std::string>{"rwkv-3.pth", "rwkv-3.state.rank1-of-2.pth", "rwkv-final.pth"}));
  EXPECT_NE(error_of([&] { dir.make_room_for_fresh_run(false, true); }).find("overwrite: 1"), std::string::npos);
  dir.make_room_for_fresh_run(true, true, 1, d + "/rwkv-3.pth");  // keeps the file a run starts from
  EXPECT_EQ(dir.earlier_run_files(0, ""), (std::vector<std::string>{"rwkv-0.pth", "rwkv-0.state.pth", "rwkv-3.pth"}));
}

TEST(RunDir, StateIsFoundOnlyWhenWholeAndMergedFromAnotherSharding) {
  const std::string d = testing::scratch_dir("run_dir_state");
  const RunDir dir(d);
  const std::string ckpt = d + "/rwkv-3.pth";
  touch_pth(ckpt);
  std::string why, saved_as;
  const StateSharding plain{}, rank0{true, 0, 2}, rank1{true, 1, 2};
  EXPECT_TRUE(dir.read_state(ckpt, plain, &why, &saved_as).empty());
  EXPECT_NE(why.find("no "), std::string::npos);
  // each shard: the position, its rank's generator, the moments of the parameters it owns
  write_pth(RunDir::state_file(ckpt, rank0),
            {{"run.step", at::full({1}, 7.0)}, {"run.rng_state", at::zeros({1})}, {"exp_avg.a", at::full({1}, 1.0)}});
  why.clear();
  EXPECT_TRUE(dir.read_state(ckpt, rank1, &why, &saved_as).empty());  // one of two shards: a save cut short
  EXPECT_NE(why.find("only 1 of the 2 state shards"), std::string::npos) << why;
  EXPECT_TRUE(dir.read_state(ckpt, rank0, &why, &saved_as).empty());  // every rank decides alike
  why.clear();
  EXPECT_TRUE(dir.read_state(ckpt, plain, &why, &saved_as).empty());  // and so does another sharding
  EXPECT_NE(why.find("only 1 of the 2 state shards"), std::string::npos) << why;
  write_pth(RunDir::state_file(ckpt, rank1),
            {{"run.step", at::full({1}, 7.0)}, {"run.rng_state", at::ones({1})}, {"exp_avg.b", at::full({1}, 2.0)}});
  EXPECT_EQ(dir.read_state(ckpt, rank1, &why, &saved_as).size(), 3u);  // its own shard as saved
  // one process, or four: the shards merged, the position once, no rank's generator
  for (const StateSharding& other : {plain, StateSharding{true, 3, 4}}) {
    saved_as.clear();
    const StateDict whole = dir.read_state(ckpt, other, &why, &saved_as);
    EXPECT_EQ(saved_as, "sharded over 2 processes");
    ASSERT_EQ(whole.size(), 3u);
    EXPECT_EQ(whole[0].first, "run.step");
    EXPECT_EQ(whole[1].first, "exp_avg.a");
    EXPECT_EQ(whole[2].first, "exp_avg.b");
    EXPECT_EQ(find_tensor(whole, "exp_avg.b").item<double>(), 2.0);
  }
  // shards saved beside different weights are not merged: the file is named
  write_pth(RunDir::state_file(ckpt, rank0), {{"run.weights_digest", at::tensor(int64_t(1))}});
  write_pth(RunDir::state_file(ckpt, rank1), {{"run.weights_digest", at::tensor(int64_t(2))}});
  EXPECT_NE(error_of([&] { dir.read_state(ckpt, plain, &why, &saved_as); }).find("rank1-of-2.pth: saved beside other weights"),
            std::string::npos);
}

TEST(RunDir, RemoveStateThenSaveKeepsThePair) {
  const std::string d = testing::scratch_dir("run_dir_pair");
  const RunDir dir(d);
  const std::string ckpt = d + "/rwkv-1.pth";
  dir.save_weights(ckpt, {{"w", at::zeros({2})}});
  dir.save_state(ckpt, {{"s", at::zeros({1})}}, {});
  dir.remove_state(ckpt, {});  // the first of a save's three writes
  std::string why, saved_as;
  EXPECT_TRUE(dir.read_state(ckpt, {}, &why, &saved_as).empty());
  // a checkpoint saved again by another number of processes: its old layout goes with it (found
  // by attack: the stale shards were read first, and the resume refused)
  const StateSharding two_0{true, 0, 2}, two_1{true, 1, 2};
  dir.save_state(ckpt, {{"s", at::zeros({1})}}, two_0);
  dir.save_state(ckpt, {{"s", at::zeros({1})}}, two_1);
  dir.save_state(ckpt, {{"s", at::zeros({1})}}, {});
  dir.remove_state(ckpt, two_1);  // rank 1 of 2: its own file only
  EXPECT_TRUE(fs::is_regular_file(RunDir::state_file(ckpt, two_0)));
  EXPECT_TRUE(fs::is_regular_file(RunDir::state_file(ckpt, {})));
  dir.save_state(ckpt, {{"s", at::zeros({1})}}, two_1);
  dir.remove_state(ckpt, two_0, /*other_layouts=*/true);  // rank 0 of 2: the plain file goes, rank 1's stays
  EXPECT_TRUE(fs::is_regular_file(RunDir::state_file(ckpt, two_1)));
  EXPECT_FALSE(fs::is_regular_file(RunDir::state_file(ckpt, {})));
  EXPECT_FALSE(fs::is_regular_file(RunDir::state_file(ckpt, two_0)));
  dir.remove_state(ckpt, {}, /*other_layouts=*/true);  // one process: every shard goes
  EXPECT_FALSE(fs::is_regular_file(RunDir::state_file(ckpt, two_1)));
}

// A kill -9 inside a save leaves the state's `.tmp` (found by CI: it was read as "saved for
// another sharding", and the resume stopped instead of going on from the weights).
TEST(RunDir, AnUnfinishedStateWriteIsACutShortSaveAndIsRemovedOnStart) {
  const std::string d = testing::scratch_dir("run_dir_tmp");
  const RunDir dir(d);
  const std::string ckpt = d + "/rwkv-114.pth";
  touch_pth(ckpt);
  touch_pth(RunDir::state_file(ckpt, {}) + ".tmp");
  touch_pth(d + "/rwkv-115.pth.tmp");
  touch_pth(d + "/notes.tmp");  // not ours: kept
  std::string why, saved_as;
  EXPECT_TRUE(dir.read_state(ckpt, {}, &why, &saved_as).empty());
  EXPECT_NE(why.find("cut short"), std::string::npos) << why;
  EXPECT_TRUE(dir.read_state(ckpt, StateSharding{true, 0, 2}, &why, &saved_as).empty());  // not a mismatch either
  dir.remove_unfinished_writes();
  std::vector<std::string> left = fs::list_directory(d);
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"notes.tmp", "rwkv-114.pth"}));
}

TEST(RunDir, LockExcludesASecondHolderAndNamesTheFirst) {
  const std::string d = testing::scratch_dir("run_dir_lock");
  {
    const RunDirLock first(d, "train");
    const std::string e = error_of([&] { RunDirLock second(d, "prepare"); });
    EXPECT_NE(e.find("is in use by rwkv7 train (pid"), std::string::npos) << e;
  }
  EXPECT_EQ(error_of([&] { RunDirLock again(d, "train"); }), "");  // released with its holder
}

}  // namespace
}  // namespace rwkv7
