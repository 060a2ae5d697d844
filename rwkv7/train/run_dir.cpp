#include "rwkv7/train/run_dir.h"

#include <ATen/ops/equal.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "rwkv7/io/fs.h"
#include "rwkv7/train/config.h"

namespace rwkv7 {

namespace {

// "rwkv-<n>.pth" -> n, "rwkv-init.pth" -> -1; anything else -> false
bool checkpoint_number(const std::string& name, int64_t* n) {
  if (name.rfind("rwkv-", 0) != 0 || name.size() < 10 || name.substr(name.size() - 4) != ".pth") return false;
  const std::string mid = name.substr(5, name.size() - 9);
  if (mid == "init") {
    *n = -1;
    return true;
  }
  if (mid.empty() || mid.size() >= 12 || mid.find_first_not_of("0123456789") != std::string::npos) return false;
  *n = std::stoll(mid);
  return true;
}

std::string without_pth(const std::string& path) { return path.substr(0, path.size() - 4); }

// `<stem>.pth` (plain) or `<stem>.rank<r>-of-<w>.pth` (one ZeRO-1 shard), where stem is rwkv-<n>.state.
bool is_state_file_name(const std::string& name, const std::string& stem) {
  if (name == stem + ".pth") return true;
  const std::string shard = stem + ".rank";
  if (name.rfind(shard, 0) != 0 || name.size() <= shard.size() + 4 || name.substr(name.size() - 4) != ".pth")
    return false;
  const std::string mid = name.substr(shard.size(), name.size() - shard.size() - 4);  // <r>-of-<w>
  const size_t of = mid.find("-of-");
  return of != std::string::npos && of > 0 && of + 4 < mid.size() &&
         mid.find_first_not_of("0123456789-of") == std::string::npos;
}

}  // namespace

RunDirLock::RunDirLock(const std::string& proj_dir, const std::string& command) {
  const std::string path = proj_dir + "/.rwkv7.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw ConfigError("key 'proj_dir': cannot create " + path + " (" + std::strerror(errno) + ")");
  const bool locked = ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
  if (!locked && errno != EWOULDBLOCK) {  // a file system without flock (some network ones)
    std::fprintf(stderr, "warning: cannot lock %s (%s); make sure no other trainer uses %s\n", path.c_str(),
                 std::strerror(errno), proj_dir.c_str());
    ::close(fd_);
    fd_ = -1;
    return;
  }
  if (!locked) {
    char holder[256] = {0};
    const ssize_t n = ::pread(fd_, holder, sizeof(holder) - 1, 0);
    std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "another process";
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    ::close(fd_);
    throw ConfigError("key 'proj_dir': " + proj_dir + " is in use by " + who +
                      "; wait for it to finish, stop it, or use another proj_dir");
  }
  char host[128] = {0};
  ::gethostname(host, sizeof(host) - 1);
  const std::string me = fmt::format("rwkv7 {} (pid {} on {})\n", command, ::getpid(), host);
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != ssize_t(me.size())) {
    // the lock holds even if its note could not be written (a full disk): nothing to stop for
  }
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

void RunDir::ensure_writable() const {
  try {
    fs::create_directories(dir_);
  } catch (const std::exception&) {
    throw ConfigError("key 'proj_dir': cannot create '" + dir_ + "'");
  }
  const std::string probe = dir_ + "/.write-test";
  std::FILE* f = std::fopen(probe.c_str(), "w");
  if (!f) throw ConfigError("key 'proj_dir': '" + dir_ + "' is not writable");
  std::fclose(f);
  std::remove(probe.c_str());
}

std::string RunDir::epoch_checkpoint(int64_t epoch) const { return fmt::format("{}/rwkv-{}.pth", dir_, epoch); }

std::string RunDir::state_file(const std::string& checkpoint, const StateSharding& s) {
  return s.sharded ? fmt::format("{}.state.rank{}-of-{}.pth", without_pth(checkpoint), s.rank, s.world)
                   : without_pth(checkpoint) + ".state.pth";
}

std::vector<std::string> RunDir::earlier_run_files(int64_t first_epoch, const std::string& keep) const {
  std::vector<std::string> out;
  for (const std::string& name : fs::list_directory(dir_)) {
    if (dir_ + "/" + name == keep) continue;
    const size_t state_at = name.find(".state.");
    const bool is_state = name.rfind("rwkv-", 0) == 0 && state_at != std::string::npos &&
                          name.size() > 4 && name.substr(name.size() - 4) == ".pth";
    int64_t n;  // the checkpoint number of rwkv-<n>.pth, or of rwkv-<n>.state*.pth
    const bool numbered = checkpoint_number(is_state ? name.substr(0, state_at) + ".pth" : name, &n) && n >= 0;
    // init_pissa.pth: the PiSSA start of the run that wrote it; a later run's resume or merge must
    // never pair its own adapter with it
    if ((numbered && n >= first_epoch) || name == "rwkv-final.pth" || name == "init_pissa.pth") out.push_back(name);
  }
  return out;
}

void RunDir::make_room_for_fresh_run(bool overwrite, bool remove, int64_t first_epoch, const std::string& keep) const {
  const std::vector<std::string> old = earlier_run_files(first_epoch, keep);
  if (old.empty()) return;
  std::string names;
  for (size_t i = 0; i < old.size() && i < 6; ++i) names += (i ? ", " : "") + old[i];
  if (old.size() > 6) names += fmt::format(" and {} more", old.size() - 6);
  if (!overwrite)
    throw ConfigError(fmt::format(
        "key 'train_stage': {} holds the checkpoints of an earlier run ({}); this start would overwrite "
        "them. Resume it with train_stage: 3, or start over in another proj_dir, or with overwrite: 1 "
        "(which removes them)", dir_, names));
  if (!remove) return;
  for (const std::string& name : old) std::remove((dir_ + "/" + name).c_str());
  std::fprintf(stderr, "overwrite: removed %zu files of an earlier run from %s (%s)\n", old.size(), dir_.c_str(),
               names.c_str());
}

StartPoint RunDir::find_resume_point(int64_t warmup_steps) const {
  std::vector<int64_t> found;
  for (const std::string& name : fs::list_directory(dir_)) {
    int64_t n;
    if (checkpoint_number(name, &n)) found.push_back(n);
  }
  std::sort(found.begin(), found.end());
  if (found.empty())
    throw ConfigError("key 'train_stage': no rwkv-init.pth or rwkv-<n>.pth in " + dir_ +
                      " to resume from (run rwkv7 prepare first)");
  StartPoint sp;
  for (size_t i = found.size(); i-- > 0;) {
    const int64_t n = found[i];
    const std::string path = n < 0 ? init_checkpoint() : epoch_checkpoint(n);
    try {
      sp.weights = read_pth(path);  // readable? (kept: the run loads it next)
    } catch (const CheckpointError& e) {
      sp.note += fmt::format("skipping unreadable {} ({}); ", path, e.what());
      continue;
    }
    sp.load_path = path;
    sp.epoch_begin = n + 1;
    sp.warmup_steps = (n >= 0 && warmup_steps < 0) ? 10 : warmup_steps;
    sp.note += "resuming from " + sp.load_path;
    return sp;
  }
  throw CheckpointError("no readable checkpoint in " + dir_ + ": " + sp.note);
}

void RunDir::remove_state(const std::string& checkpoint, const StateSharding& s, bool other_layouts) const {
  std::remove(state_file(checkpoint, s).c_str());
  if (!other_layouts) return;
  // a state this checkpoint had from another number of processes (a resume that resharded it):
  // it must not outlive the weights it was saved beside
  const std::string stem = without_pth(checkpoint).substr(dir_.size() + 1) + ".state";
  for (const std::string& name : fs::list_directory(dir_)) {
    if (name.rfind(stem, 0) != 0 || !is_state_file_name(name, stem)) continue;
    bool this_layout = false;
    for (int64_t r = 0; r < s.world && s.sharded && !this_layout; ++r)
      this_layout = dir_ + "/" + name == state_file(checkpoint, StateSharding{true, r, s.world});
    if (!this_layout) std::remove((dir_ + "/" + name).c_str());
  }
}

void RunDir::save_weights(const std::string& checkpoint, const StateDict& weights) const {
  write_pth(checkpoint, weights);
}

void RunDir::save_state(const std::string& checkpoint, const StateDict& state, const StateSharding& s) const {
  write_pth(state_file(checkpoint, s), state);
}

StateDict RunDir::read_state(const std::string& checkpoint, const StateSharding& s, std::string* why_not,
                             std::string* saved_as) const {
  const std::string mine = state_file(checkpoint, s);
  if (!s.sharded && fs::is_regular_file(mine)) return read_pth(mine);
  auto complete = [&](int64_t world) {  // how many of the `world` shards are there
    int64_t present = 0;
    for (int64_t r = 0; r < world; ++r)
      present += fs::is_regular_file(state_file(checkpoint, StateSharding{true, r, world}));
    return present;
  };
  if (s.sharded) {  // every rank decides alike, on all `world` shards
    const int64_t present = complete(s.world);
    if (present == s.world) return read_pth(mine);
    if (present > 0) {  // a save cut short: the weights are whole, the state is not
      *why_not = fmt::format("only {} of the {} state shards of {} are there", present, s.world, checkpoint);
      return {};
    }
  }
  // Saved by another number of processes or another zero_stage: the state is made whole again
  // (the optimizer's entries are keyed by parameter name; each rank's optimizer takes its own).
  // Only finished files count: a kill -9 inside a save leaves `<state>.pth.tmp`.
  const std::string stem = without_pth(checkpoint).substr(dir_.size() + 1) + ".state";
  std::string cut_short;
  for (const std::string& name : fs::list_directory(dir_)) {
    if (name.rfind(stem, 0) != 0 || dir_ + "/" + name == mine || !is_state_file_name(name, stem)) continue;
    std::vector<std::string> files;
    if (name == stem + ".pth") {
      files.push_back(dir_ + "/" + name);
      *saved_as = "unsharded";
    } else {
      const std::string shard = name.substr(stem.size() + 1, name.size() - stem.size() - 5);  // <r>-of-<w>
      const int64_t world = std::stoll(shard.substr(shard.find("-of-") + 4));
      if (world < 1 || complete(world) != world) {
        cut_short = fmt::format("only {} of the {} state shards of {} are there", complete(world), world, checkpoint);
        continue;
      }
      for (int64_t r = 0; r < world; ++r) files.push_back(state_file(checkpoint, StateSharding{true, r, world}));
      *saved_as = fmt::format("sharded over {} processes", world);
    }
    // the position (run.*) from the first file; a generator state belongs to its rank alone; the
    // shards must all have been saved beside the same weights
    StateDict whole;
    std::set<std::string> seen;
    at::Tensor digest;
    for (size_t i = 0; i < files.size(); ++i)
      for (auto& [key, value] : read_pth(files[i])) {
        if (key == "run.weights_digest") {
          if (!digest.defined()) digest = value;
          else if (!at::equal(digest, value))
            throw CheckpointError(fmt::format("{}: saved beside other weights than {} (a shard of another save)",
                                              files[i], files[0]));
        }
        if ((i > 0 && key.rfind("run.", 0) == 0) || key == "run.rng_state" || !seen.insert(key).second) continue;
        whole.emplace_back(key, std::move(value));
      }
    return whole;
  }
  *why_not = !cut_short.empty()                     ? cut_short
             : fs::is_regular_file(mine + ".tmp") ? "the save of " + mine + " was cut short"
                                                  : "no " + mine;
  return {};
}

void RunDir::remove_unfinished_writes() const {
  std::vector<std::string> removed;
  for (const std::string& name : fs::list_directory(dir_)) {
    const bool ours = name.rfind("rwkv-", 0) == 0 && name.size() > 4 && name.substr(name.size() - 4) == ".tmp";
    if (ours && std::remove((dir_ + "/" + name).c_str()) == 0) removed.push_back(name);
  }
  if (!removed.empty())
    std::fprintf(stderr, "removed %zu unfinished write(s) of an earlier process from %s (%s%s)\n", removed.size(),
                 dir_.c_str(), removed[0].c_str(), removed.size() > 1 ? ", ..." : "");
}

}  // namespace rwkv7
