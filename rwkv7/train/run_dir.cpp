#include "rwkv7/train/run_dir.h"

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

}  // namespace

RunDirLock::RunDirLock(const std::string& proj_dir, const std::string& command) {
  const std::string path = proj_dir + "/.rwkv7.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw ConfigError("key 'proj_dir': cannot create " + path + " (" + std::strerror(errno) + ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
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

std::vector<std::string> RunDir::earlier_run_files() const {
  std::vector<std::string> out;
  for (const std::string& name : fs::list_directory(dir_)) {
    int64_t n;
    const bool checkpoint = checkpoint_number(name, &n) && n >= 0;
    const bool state = name.rfind("rwkv-", 0) == 0 && name.find(".state.") != std::string::npos &&
                       name.size() > 4 && name.substr(name.size() - 4) == ".pth";
    if (checkpoint || state || name == "rwkv-final.pth") out.push_back(name);
  }
  return out;
}

void RunDir::make_room_for_fresh_run(bool overwrite, bool remove) const {
  const std::vector<std::string> old = earlier_run_files();
  if (old.empty()) return;
  std::string names;
  for (size_t i = 0; i < old.size() && i < 6; ++i) names += (i ? ", " : "") + old[i];
  if (old.size() > 6) names += fmt::format(" and {} more", old.size() - 6);
  if (!overwrite)
    throw ConfigError(fmt::format(
        "key 'train_stage': {} holds the checkpoints of an earlier run ({}); a fresh start would overwrite "
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

void RunDir::save(const std::string& checkpoint, const StateDict* weights, const StateDict* state,
                  const StateSharding& s) const {
  if (weights) write_pth(checkpoint, *weights);
  if (state) write_pth(state_file(checkpoint, s), *state);
}

StateDict RunDir::read_state(const std::string& checkpoint, const StateSharding& s, std::string* why_not) const {
  const std::string plain = state_file(checkpoint, StateSharding{});
  if (!s.sharded) {
    if (fs::is_regular_file(plain)) return read_pth(plain);
    *why_not = "no " + plain;
    for (const std::string& name : fs::list_directory(dir_))
      if (name.rfind(without_pth(plain.substr(dir_.size() + 1)) + ".rank", 0) == 0)
        *why_not = fmt::format("its state is sharded ({}); resume with zero_stage: 1 and as many processes", name);
    return {};
  }
  // Every rank decides alike: use the shards only when all `world` of them are there.
  for (int64_t r = 0; r < s.world; ++r) {
    const std::string shard = state_file(checkpoint, StateSharding{true, r, s.world});
    if (!fs::is_regular_file(shard)) {
      *why_not = fs::is_regular_file(plain) ? "its state was saved unsharded; resume with zero_stage: 0"
                                            : "no " + shard;
      return {};
    }
  }
  return read_pth(state_file(checkpoint, s));
}

}  // namespace rwkv7
