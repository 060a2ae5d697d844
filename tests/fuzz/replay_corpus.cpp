// Replays every file of tests/fuzz/corpus/<target>/ through its fuzz target: the seeds and
// everything the fuzzer once found stay tests.
#include <gtest/gtest.h>

#include <fstream>

#include "fuzz_targets.h"
#include "rwkv7/io/fs.h"

namespace rwkv7 {
namespace {

void replay(const std::string& target, void (*run)(const uint8_t*, size_t)) {
  const std::string dir = std::string(RWKV7_FUZZ_CORPUS) + "/" + target;
  const auto files = fs::list_directory(dir);
  ASSERT_FALSE(files.empty()) << "no corpus in " << dir;
  for (const auto& name : files) {
    std::ifstream f(dir + "/" + name, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(f)), {});
    SCOPED_TRACE(target + "/" + name);
    run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
}

TEST(FuzzCorpus, Pth) { replay("pth", fuzz::pth); }
TEST(FuzzCorpus, Safetensors) { replay("safetensors", fuzz::safetensors); }
TEST(FuzzCorpus, Binidx) { replay("binidx", fuzz::binidx); }
TEST(FuzzCorpus, Config) { replay("config", fuzz::config); }

}  // namespace
}  // namespace rwkv7
