// .pth reading and writing: the seed's OrderedDict checkpoints, round trips of every dtype,
// and malformed files that must give errors, never crashes.
#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "golden.h"
#include "rwkv7/io/checkpoint.h"
#include "rwkv7/io/pickle.h"

namespace rwkv7 {
namespace {

using testing::golden;
using testing::scratch_dir;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

TEST(Checkpoint, ReadsTheSeedsOrderedDict) {
  const StateDict d = read_pth(golden("train_byte_L2_D128/after-120-steps.pth"));
  ASSERT_EQ(d.size(), 72u);  // L2 D128: 2 blocks x 34 (+ ln0) + emb, ln_out, head
  EXPECT_EQ(d.front().first, "emb.weight");
  EXPECT_EQ(d.front().second.sizes(), at::IntArrayRef({256, 128}));
  EXPECT_EQ(d.back().first, "head.weight");
  for (const auto& [name, t] : d) {
    EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
    EXPECT_TRUE(at::isfinite(t).all().item<bool>()) << name;
  }
}

TEST(Checkpoint, ReadsBFloat16PlainDict) {
  const StateDict d = read_pth(golden("train_world_L2_D64/rwkv-init.pth"));
  EXPECT_EQ(find_tensor(d, "emb.weight").scalar_type(), at::kBFloat16);
  EXPECT_EQ(find_tensor(d, "emb.weight").sizes(), at::IntArrayRef({65536, 64}));
}

TEST(Checkpoint, RoundTripKeepsDtypesShapesAndValues) {
  at::manual_seed(1);
  StateDict out = {
      {"f32", at::randn({3, 4})},
      {"bf16", at::randn({5}).to(at::kBFloat16)},
      {"f16", at::randn({2, 2, 2}).to(at::kHalf)},
      {"f64", at::randn({7}, at::kDouble)},
      {"i64", at::arange(10, at::kLong)},
      {"scalar", at::tensor(3.5)},
      {"empty", at::zeros({0, 4})},
      {"transposed", at::randn({4, 6}).t()},  // written contiguous
      {"big.name.with.dots", at::randn({1, 1, 9})},
  };
  const std::string path = scratch_dir("roundtrip") + "/x.pth";
  write_pth(path, out);
  const StateDict in = read_pth(path);
  ASSERT_EQ(in.size(), out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(in[i].first, out[i].first);
    EXPECT_EQ(in[i].second.scalar_type(), out[i].second.scalar_type()) << out[i].first;
    EXPECT_EQ(in[i].second.sizes(), out[i].second.sizes()) << out[i].first;
    EXPECT_TRUE(at::equal(in[i].second, out[i].second)) << out[i].first;
  }
}

void expect_checkpoint_error(const std::string& path, const std::string& fault = "") {
  try {
    read_pth(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    if (!fault.empty()) EXPECT_NE(msg.find(fault), std::string::npos) << msg;
  }
}

TEST(Checkpoint, MissingEmptyRandomAndTruncatedFilesGiveErrors) {
  const std::string dir = scratch_dir("malformed");
  expect_checkpoint_error(dir + "/nope.pth", "no such file");
  write_file(dir + "/empty.pth", "");
  expect_checkpoint_error(dir + "/empty.pth");
  std::mt19937 rng(5);
  std::string junk(4096, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  write_file(dir + "/random.pth", junk);
  expect_checkpoint_error(dir + "/random.pth");
  const std::string good = read_file(golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth"));
  for (size_t cut : {size_t(10), size_t(1000), good.size() / 2, good.size() - 100, good.size() - 1}) {
    const std::string p = dir + "/cut" + std::to_string(cut) + ".pth";
    write_file(p, good.substr(0, cut));
    expect_checkpoint_error(p);
  }
}

// A record shorter than its tensor claims must be refused before it is trusted.
TEST(Checkpoint, RecordSizeIsChecked) {
  const std::string path = scratch_dir("short-record") + "/short.pth";
  {
    std::ofstream f(path, std::ios::binary);
    caffe2::serialize::PyTorchStreamWriter w([&](const void* b, size_t n) {
      f.write(static_cast<const char*>(b), n);
      return n;
    });
    const std::string pkl = pickle_tensor_dict({{"x", at::zeros({100})}});  // claims 100 floats
    w.writeRecord("data.pkl", pkl.data(), pkl.size());
    std::vector<float> ten(10, 1.0f);
    w.writeRecord("data/0", ten.data(), ten.size() * sizeof(float));  // holds 10
    w.writeEndOfFile();
  }
  expect_checkpoint_error(path, "record data/0 has 40 bytes");
}

// Random byte flips in a valid pickle: the parser either reads something or throws
// std::runtime_error; it never crashes, hangs or reads out of bounds (run under ASan in
// the fuzz script).
TEST(Checkpoint, MutatedPicklesNeverCrash) {
  const std::string pkl = pickle_tensor_dict({{"a", at::zeros({2, 3})}, {"b", at::zeros({4})}});
  StorageLoader loader = [](const std::string&, at::ScalarType dtype, int64_t numel) {
    if (numel > 1000) throw std::runtime_error("too big");
    return at::zeros({numel}, at::TensorOptions().dtype(dtype));
  };
  std::mt19937 rng(11);
  int parsed = 0, refused = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string m = pkl;
    const int flips = 1 + rng() % 4;
    for (int i = 0; i < flips; ++i) m[rng() % m.size()] = static_cast<char>(rng());
    if (trial % 7 == 0) m.resize(rng() % m.size());
    try {
      unpickle(m, loader);
      ++parsed;
    } catch (const std::runtime_error&) {
      ++refused;
    }
  }
  EXPECT_EQ(parsed + refused, 3000);
  EXPECT_GT(refused, 1000);
}

}  // namespace
}  // namespace rwkv7
