// The safetensors reader and writer: a round trip of every dtype the project uses, and every way
// a header can lie (length, JSON, dtype, shape, offsets) refused with an error naming the file.
// Python's own safetensors package is held against ours in tests/python/test_export.py.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "golden.h"
#include "rwkv7/io/safetensors.h"

namespace rwkv7 {
namespace {

// A file: the 8-byte length, the header as given, then `data`.
std::string file_with(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int b = 0; b < 8; ++b) out[b] = char((uint64_t(header.size()) >> (8 * b)) & 0xff);
  return out + header + data;
}

std::string error_of(const std::string& bytes) {
  try {
    read_safetensors_bytes(bytes, "bad.safetensors");
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripKeepsNamesOrderDtypesAndValues) {
  StateDict in = {{"emb.weight", at::randn({4, 3})},
                  {"blocks.0.att.r_k", at::randn({2, 5}).to(at::kBFloat16)},
                  {"half", at::randn({7}).to(at::kHalf)},
                  {"double", at::randn({2, 2}, at::kDouble)},
                  {"step", at::tensor(int64_t(42))},
                  {"empty", at::empty({0, 3})}};
  const std::string path = testing::scratch_dir("safetensors") + "/m.safetensors";
  write_safetensors(path, in);
  const StateDict out = read_weights(path);
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].first, in[i].first);
    EXPECT_EQ(out[i].second.scalar_type(), in[i].second.scalar_type()) << in[i].first;
    EXPECT_TRUE(at::equal(out[i].second, in[i].second)) << in[i].first;
  }
}

TEST(Safetensors, MalformedFilesGiveErrorsNamingTheFile) {
  const std::string f32x2(8, '\0');  // two float zeros
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_EQ(error_of(file_with(ok, f32x2)), "");  // the baseline is accepted
  const std::pair<std::string, std::string> cases[] = {
      {std::string("\x05\0\0", 3), "shorter than the 8-byte header length"},
      {std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + ok, "implausibly large"},
      {file_with(ok, f32x2).substr(0, 20), "runs past the file"},
      {file_with(ok, f32x2 + "xx"), "the tensors cover 8 bytes, the file holds 10"},
      {file_with(ok, f32x2.substr(0, 4)), "cover 8 bytes, the file holds 4"},
      {file_with(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32x2), "overlap"},
      {file_with(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32x2), "leave a gap"},
      {file_with(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2), "needs 12 bytes"},
      {file_with(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", f32x2), "unsupported dtype"},
      {file_with(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", f32x2), "data_offsets"},
      {file_with(R"({"a":{"dtype":"F32","shape":[2]}})", ""), "lacks"},
      {file_with(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("a":{"dtype":"F32","shape":[0],"data_offsets":[8,8]}})", f32x2), "appears twice"},
      {file_with(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2), "non-negative integer"},
      {file_with(R"({"a" "b"})", ""), "expected ':'"},
      {file_with(ok + "{}", f32x2), "text after"},
      {file_with(R"({"\u 7a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2), "bad \\u escape"},
      {file_with(R"({"\ud83d":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2), "lone surrogate"},
      // 2^48 x 2^14 floats: the byte count overflows 64 bits (it must not wrap to 0)
      {file_with(R"({"a":{"dtype":"F32","shape":[281474976710656,16384],"data_offsets":[0,0]}})", ""), "too large"},
  };
  for (const auto& [bytes, needle] : cases) {
    const std::string e = error_of(bytes);
    EXPECT_NE(e.find("bad.safetensors"), std::string::npos) << needle << ": " << e;
    EXPECT_NE(e.find(needle), std::string::npos) << needle << ": " << e;
  }
}

// Many tensors, some empty (an empty tensor shares its begin with the next one), and names the
// writer must escape; JSON \u escapes (a surrogate pair too) decode to UTF-8.
TEST(Safetensors, EmptyTensorsEscapedNamesAndUnicodeEscapes) {
  StateDict in;
  for (int i = 0; i < 40; ++i) in.emplace_back("t" + std::to_string(i), i % 3 ? at::randn({i % 5}) : at::empty({0}));
  in.emplace_back("quote\"back\\slash\ttab", at::ones({2}));
  const std::string dir = testing::scratch_dir("safetensors_many");
  write_safetensors(dir + "/m.safetensors", in);
  const StateDict out = read_safetensors(dir + "/m.safetensors");
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].first, in[i].first);
    EXPECT_TRUE(at::equal(out[i].second, in[i].second)) << in[i].first;
  }
  const StateDict u = read_safetensors_bytes(
      file_with(R"({"\u00e9\ud83d\ude00":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})", ""), "u");
  EXPECT_EQ(u.at(0).first, "\xc3\xa9\xf0\x9f\x98\x80");  // é and 😀 in UTF-8
  EXPECT_THROW(write_safetensors(dir + "/bad.safetensors", {{"__metadata__", at::ones({1})}}), CheckpointError);
  EXPECT_THROW(write_safetensors(dir + "/bad.safetensors", {{"a", at::ones({1})}, {"a", at::ones({1})}}), CheckpointError);
}

TEST(Safetensors, ReadWeightsChoosesTheFormatByName) {
  const std::string dir = testing::scratch_dir("safetensors_pick");
  StateDict d = {{"w", at::arange(6, at::kFloat)}};
  write_safetensors(dir + "/a.safetensors", d);
  write_pth(dir + "/a.pth", d);
  EXPECT_TRUE(at::equal(read_weights(dir + "/a.safetensors")[0].second, read_weights(dir + "/a.pth")[0].second));
  EXPECT_THROW(read_weights(dir + "/missing.safetensors"), CheckpointError);
}

}  // namespace
}  // namespace rwkv7
