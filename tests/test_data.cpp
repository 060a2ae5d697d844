// binidx reading, the magic-prime sampler (golden offsets, overflow included), prime checks.
#include <gtest/gtest.h>

#include <fstream>

#include "golden.h"
#include "rwkv7/data/data.h"

namespace rwkv7 {
namespace {

TEST(Sampler, GoldenOffsetsExactly) {
  const YAML::Node rows = testing::load_json("sampler.json")["rows"];
  ASSERT_GT(rows.size(), 10u);
  for (const auto& r : rows) {
    const uint64_t got = sample_offset(r["magic_prime"].as<uint64_t>(), r["ctx_len"].as<uint64_t>(),
                                       r["epoch_samples"].as<uint64_t>(), r["epoch"].as<uint64_t>(),
                                       r["idx"].as<uint64_t>(), r["rank"].as<uint64_t>(),
                                       r["world_size"].as<uint64_t>());
    EXPECT_EQ(got, r["offset"].as<uint64_t>()) << "epoch " << r["epoch"] << " idx " << r["idx"];
  }
}

TEST(BinIdx, ReadsTheGoldenData) {
  BinIdx bytes(testing::golden_binidx("data/lambada_bytes"));
  EXPECT_EQ(bytes.num_tokens(), 1693990u);
  EXPECT_EQ(bytes.num_documents(), 5153u);
  EXPECT_LE(bytes.max_token(), 255);
  // The reader against the .bin's own bytes (little-endian uint16 tokens), at the start and in the middle.
  std::ifstream bin(testing::golden_binidx("data/lambada_bytes") + ".bin", std::ios::binary);
  for (const int64_t at : {int64_t(0), int64_t(1000001)}) {
    unsigned char raw[6];
    bin.seekg(2 * at);
    ASSERT_TRUE(bin.read(reinterpret_cast<char*>(raw), 6));
    int64_t got[3];
    bytes.read(at, 3, got);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i], raw[2 * i] | (raw[2 * i + 1] << 8)) << "token " << at + i;
  }
  int64_t past_end[3];
  EXPECT_THROW(bytes.read(bytes.num_tokens() - 2, 3, past_end), DataError);
  BinIdx world(testing::golden_binidx("data/lambada_world"));
  EXPECT_EQ(world.num_documents(), bytes.num_documents());
  EXPECT_LT(world.max_token(), 65536);
}

TEST(BinIdx, MalformedFilesGiveErrorsNamingTheFile) {
  const std::string dir = testing::scratch_dir("binidx");
  const std::string src = testing::golden_binidx("data/lambada_bytes");
  auto copy_with = [&](const std::string& name, auto&& edit_idx, uint64_t bin_bytes) {
    std::ifstream i(src + ".idx", std::ios::binary), b(src + ".bin", std::ios::binary);
    std::string idx((std::istreambuf_iterator<char>(i)), {}), bin((std::istreambuf_iterator<char>(b)), {});
    edit_idx(idx);
    std::ofstream(dir + "/" + name + ".idx", std::ios::binary) << idx;
    std::ofstream(dir + "/" + name + ".bin", std::ios::binary) << bin.substr(0, bin_bytes);
    return dir + "/" + name;
  };
  auto expect_error = [](const std::string& prefix, const std::string& fault) {
    try {
      BinIdx d(prefix);
      ADD_FAILURE() << "no error for " << prefix;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(fault), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(prefix), std::string::npos) << e.what();
    }
  };
  const uint64_t full = 1693990;
  expect_error(copy_with("magic", [](std::string& s) { s[0] = 'X'; }, full), "bad magic");
  expect_error(copy_with("version", [](std::string& s) { s[9] = 2; }, full), "version");
  expect_error(copy_with("dtype", [](std::string& s) { s[17] = 6; }, full), "dtype");
  expect_error(copy_with("count", [](std::string& s) { s.resize(s.size() - 8); }, full), "counts");
  expect_error(copy_with("short", [](std::string&) {}, full - 100), "shorter than");
  expect_error(dir + "/absent", "cannot open");
}

TEST(MagicPrime, ChecksAndSuggestion) {
  const uint64_t tokens = 1498226207, ctx = 512;
  EXPECT_EQ(check_magic_prime(2926181, tokens, ctx), "");
  EXPECT_EQ(suggest_magic_prime(tokens, ctx), 2926181u);
  EXPECT_NE(check_magic_prime(2926182, tokens, ctx).find("not prime"), std::string::npos);
  EXPECT_NE(check_magic_prime(2926111, tokens, ctx).find("2 mod 3"), std::string::npos);  // prime, 1 mod 3
  EXPECT_NE(check_magic_prime(1000037, tokens, ctx).find("does not fit"), std::string::npos);
  EXPECT_EQ(check_magic_prime(26459, 1693990, 64), "");
}

}  // namespace
}  // namespace rwkv7
