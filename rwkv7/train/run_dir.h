// The run folder (proj_dir): the only code that names the files in it, finds where to resume,
// and writes or reads a checkpoint together with its training state.
//
//   rwkv-init.pth                     the initial weights (`rwkv7 prepare`, or a fresh start)
//   rwkv-<n>.pth                      weights after mini-epoch n (the seed's name and format)
//   rwkv-final.pth                    weights when the token budget is spent
//   rwkv-<n>.state.pth                what an exact resume needs beside rwkv-<n>.pth: position,
//                                     optimizer moments, fp32 masters (train_state.h)
//   rwkv-<n>.state.rank<r>-of-<w>.pth the same, one shard per rank, under ZeRO (zero_stage >= 1)
//   init_pissa.pth                    a PiSSA run's start (B0, A0), for its resume and merge
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

  // The files of an earlier run that a run starting at mini-epoch `first_epoch` would overwrite:
  // rwkv-<n>.pth with n >= first_epoch, their state files, rwkv-final.pth, init_pissa.pth; never `keep` (the
  // checkpoint the run starts from, when it lies here).
  std::vector<std::string> earlier_run_files(int64_t first_epoch, const std::string& keep) const;
  // Before a start that is not a resume: with such files here, throws ConfigError naming them and
  // saying how to resume or start over; with `overwrite` removes them instead (when `remove`).
  void make_room_for_fresh_run(bool overwrite, bool remove, int64_t first_epoch = 0, const std::string& keep = "") const;

  // The seed's resume rule (train_stage >= 2): the highest rwkv-<n>.pth (rwkv-init.pth counts
  // as -1); if that one cannot be read, the one before it. `warmup_steps` is the config's (-1:
  // the seed's 10 when resuming from rwkv-<n>.pth). Throws if there is none.
  StartPoint find_resume_point(int64_t warmup_steps) const;

  // A checkpoint and its state are written as a pair, each file atomically: first this process's
  // old state file of that name is removed (so a crash in between leaves weights without a state,
  // which resumes from the weights alone and says so, never weights beside a stale state), then
  // `weights` (if not null: rank 0), then `state` (if not null). With several processes the caller
  // puts a barrier between the three (Run::save).
  // (`other_layouts`, one process of the run: also the checkpoint's state files of any other
  // layout, unsharded or another number of shards, left by the run before a resharding resume.)
  void remove_state(const std::string& checkpoint, const StateSharding& s, bool other_layouts = false) const;
  void save_weights(const std::string& checkpoint, const StateDict& weights) const;
  void save_state(const std::string& checkpoint, const StateDict& state, const StateSharding& s) const;

  // A kill -9 inside an atomic write leaves `rwkv-*.tmp`; the next holder of the lock removes them
  // (rank 0, before anything is read or written) and says so.
  void remove_unfinished_writes() const;

  // The state saved with `checkpoint` for this process; an empty dict with `*why_not` set when
  // none was saved. A state saved another way (unsharded, or sharded over another number of
  // processes) is read whole, all its shards merged, and `*saved_as` says how it was saved
  // ("unsharded", "sharded over 2 processes"); the caller checks that it fits (the global batch).
  StateDict read_state(const std::string& checkpoint, const StateSharding& s, std::string* why_not,
                       std::string* saved_as) const;

 private:
  std::string dir_;
};

}  // namespace rwkv7
