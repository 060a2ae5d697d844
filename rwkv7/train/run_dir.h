// The run folder (proj_dir): the only code that names the files in it, finds where to resume,
// and writes or reads a checkpoint together with its training state.
//
//   rwkv-init.pth                     the initial weights (`rwkv7 prepare`, or a fresh start)
//   rwkv-<n>.pth                      weights after mini-epoch n (the seed's name and format)
//   rwkv-final.pth                    weights when the token budget is spent
//   rwkv-<n>.state.pth                what an exact resume needs beside rwkv-<n>.pth: position,
//                                     optimizer moments, fp32 masters (train_state.h)
//   rwkv-<n>.state.rank<r>-of-<w>.pth the same, one shard per rank, under ZeRO-1
//   train_log.txt, metrics.jsonl      the run log (metrics.h)
//   .rwkv7.lock                       who holds the folder (RunDirLock)
//
// A checkpoint and its state belong together: the state is written right after its checkpoint,
// and is read only when every file of it (all w shards) is there; otherwise the run resumes from
// the weights alone and says why.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rwkv7/io/checkpoint.h"

namespace rwkv7 {

// Which part of the training state this process keeps: all of it, or shard `rank` of `world`.
struct StateSharding {
  bool sharded = false;
  int64_t rank = 0, world = 1;
};

// Where a run starts.
struct StartPoint {
  std::string load_path;     // checkpoint to load; "" = fresh init
  int64_t epoch_begin = 0;   // first mini-epoch of this run
  int64_t warmup_steps = -1; // the run's warmup (10 when resuming from rwkv-<n>.pth)
  std::string note;          // what was chosen and why (printed and logged)
  StateDict weights;         // the checkpoint, when finding it meant reading it already
};

// An exclusive hold on a run folder for as long as it lives, so that two trainers never write
// into one folder: flock() on proj_dir/.rwkv7.lock, which also names the holder (pid, host). The
// kernel drops the lock when its process dies, so a lock file left by a dead run never blocks.
// (flock on a network file system may not exclude a process on another host.)
class RunDirLock {
 public:
  // Throws ConfigError naming the holder if another process holds it.
  RunDirLock(const std::string& proj_dir, const std::string& command);
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

class RunDir {
 public:
  explicit RunDir(std::string proj_dir) : dir_(std::move(proj_dir)) {}
  const std::string& path() const { return dir_; }

  // Creates the folder; throws ConfigError (key 'proj_dir') if it cannot be created or written.
  void ensure_writable() const;

  std::string init_checkpoint() const { return dir_ + "/rwkv-init.pth"; }
  std::string epoch_checkpoint(int64_t epoch) const;
  std::string final_checkpoint() const { return dir_ + "/rwkv-final.pth"; }
  // The state file of `checkpoint` that this process writes and reads.
  static std::string state_file(const std::string& checkpoint, const StateSharding& s);

  // The files an earlier run left here: rwkv-<n>.pth, rwkv-final.pth and their state files.
  std::vector<std::string> earlier_run_files() const;
  // Before a fresh start: with earlier run files here, throws ConfigError naming them and saying
  // how to resume or start over; with `overwrite` removes them instead (when `remove`: rank 0).
  void make_room_for_fresh_run(bool overwrite, bool remove) const;

  // The seed's resume rule (train_stage >= 2): the highest rwkv-<n>.pth (rwkv-init.pth counts
  // as -1); if that one cannot be read, the one before it. `warmup_steps` is the config's (-1:
  // the seed's 10 when resuming from rwkv-<n>.pth). Throws if there is none.
  StartPoint find_resume_point(int64_t warmup_steps) const;

  // Writes `weights` (if not null: rank 0) as `checkpoint`, then `state` (if not null) as its
  // state file for `s`. Each file is written atomically.
  void save(const std::string& checkpoint, const StateDict* weights, const StateDict* state,
            const StateSharding& s) const;

  // The state saved with `checkpoint` for this process, or an empty dict with `*why_not` set
  // when there is none to use (none written, or written for another sharding).
  StateDict read_state(const std::string& checkpoint, const StateSharding& s, std::string* why_not) const;

 private:
  std::string dir_;
};

}  // namespace rwkv7
