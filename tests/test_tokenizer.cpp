// Tokenizers and data preparation: the seed's world tokenizer exactly, binidx files that are
// byte-identical to the golden ones, and the jsonl line checks.
#include <gtest/gtest.h>

#include <fstream>

#include "golden.h"
#include "rwkv7/data/data.h"
#include "rwkv7/io/fs.h"
#include "rwkv7/data/jsonl.h"
#include "rwkv7/data/tokenizer.h"

namespace rwkv7 {
namespace {

using testing::golden;

const WorldTokenizer& world() {
  static const WorldTokenizer t(testing::golden("vocab/rwkv_vocab_v20230424.txt"));
  return t;
}

TEST(Tokenizer, WorldMatchesTheSeedExactly) {
  const YAML::Node rows = testing::load_json("tokenizer_world.json")["rows"];
  ASSERT_GT(rows.size(), 5u);
  for (const auto& r : rows) {
    const std::string text = r["text"].as<std::string>();
    const auto want = r["ids"].as<std::vector<int64_t>>();
    EXPECT_EQ(world().encode(text), want) << text;
    EXPECT_EQ(world().decode(want), text);
  }
}

TEST(Tokenizer, PythonLiterals) {
  EXPECT_EQ(parse_python_literal("'\\x00'"), std::string(1, '\0'));
  EXPECT_EQ(parse_python_literal("b'\\xf9'"), "\xf9");
  EXPECT_EQ(parse_python_literal("'\\xe9'"), "\xc3\xa9");  // str: U+00E9 in UTF-8
  EXPECT_EQ(parse_python_literal("\"it's\""), "it's");
  EXPECT_EQ(parse_python_literal("'\\t\\n\\\\'"), "\t\n\\");
  EXPECT_EQ(parse_python_literal("'\\u4e2d'"), "\xe4\xb8\xad");
  EXPECT_THROW(parse_python_literal("'abc"), std::runtime_error);
  EXPECT_THROW(parse_python_literal("'\\x4'"), std::runtime_error);
}

// Rebuild the LAMBADA jsonl from golden/data/lambada_bytes (one text per document, its trailing
// 0 removed), tokenize it both ways, and compare the files byte for byte with the golden ones.
TEST(Tokenizer, LambadaToBinidxIsByteIdentical) {
  BinIdx bytes(testing::golden_binidx("data/lambada_bytes"));
  std::vector<std::string> texts;
  uint64_t offset = 0;
  for (int32_t size : bytes.document_sizes()) {
    std::vector<int64_t> ids(size);
    bytes.read(offset, size, ids.data());
    offset += size;
    std::string t;
    for (int i = 0; i + 1 < size; ++i) t += static_cast<char>(ids[i]);
    texts.push_back(t);
  }
  const std::string dir = testing::scratch_dir("lambada");
  auto read_all = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), {});
  };
  for (const auto& [name, tok] : std::vector<std::pair<std::string, const Tokenizer*>>{
           {"lambada_world", &world()}, {"lambada_bytes", new ByteTokenizer()}}) {
    BinIdxWriter out(dir + "/" + name);
    for (const auto& t : texts) {
      std::vector<int64_t> ids = tok->encode(t);
      ids.push_back(0);
      out.add_document(ids);
    }
    out.finish();
    for (const char* ext : {".bin", ".idx"})
      EXPECT_TRUE(read_all(dir + "/" + name + ext) == read_all(golden("data/" + name + ext))) << name << ext;
  }
}

TEST(Tokenizer, UnfinishedWriterLeavesNothing) {
  const std::string dir = testing::scratch_dir("unfinished");
  {
    BinIdxWriter out(dir + "/x");
    out.add_document({1, 2, 3});
    EXPECT_THROW(out.add_document({70000}), DataError);
  }
  EXPECT_TRUE(fs::list_directory(dir).empty());
}

TEST(Jsonl, GoodAndBadLines) {
  std::string text;
  EXPECT_EQ(parse_text_line(R"({"text": "a\nb \u00e9 \ud83d\ude00", "meta": {"x": [1, 2.5, null]}})", &text), "");
  EXPECT_EQ(text, "a\nb \xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(parse_text_line("not json", &text), "not a JSON object");
  EXPECT_EQ(parse_text_line(R"({"title": "x"})", &text), "no \"text\" field");
  EXPECT_EQ(parse_text_line(R"({"text": 5})", &text), "\"text\" is not a string");
  EXPECT_NE(parse_text_line(R"({"text": "abc)", &text), "");
  EXPECT_NE(parse_text_line(R"({"text": "\ud800"})", &text), "");
  EXPECT_EQ(parse_text_line("{\"text\": \"\xff\xfe\"}", &text), "invalid UTF-8");
  EXPECT_NE(parse_text_line(R"({"text": "a"} extra)", &text), "");
}

}  // namespace
}  // namespace rwkv7
