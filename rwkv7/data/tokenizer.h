// Tokenizers: bytes (id = byte value) and the RWKV world tokenizer (rwkv_vocab_v20230424.txt),
// the latter encoding exactly as the seed's RWKV_TOKENIZER (RWKV-LM rwkv_v7_demo.py).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rwkv7 {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int64_t> encode(std::string_view utf8) const = 0;
  // Token 0 (end of text) decodes to nothing.
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
};

class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int64_t> encode(std::string_view utf8) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return 256; }
};

// Each vocab line: `id literal length`, the literal a Python str ('...') or bytes (b'...')
// repr whose UTF-8 / raw bytes are `length` long. Id 0 is end-of-text and not listed.
//
// Encoding, as the seed's: at each position with bytes s0 s1, try the tokens starting with
// s0 s1 from the highest id down and take the first that is a prefix of the rest; else the
// single byte s0. The vocabulary is sorted by byte length (the seed requires it; we check),
// so "first from the highest id" is "longest", which a byte trie finds in one walk.
class WorldTokenizer : public Tokenizer {
 public:
  explicit WorldTokenizer(const std::string& vocab_path);  // throws std::runtime_error: file:line
  std::vector<int64_t> encode(std::string_view utf8) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return 65536; }
  const std::string& token(int64_t id) const { return tokens_.at(id); }

 private:
  std::vector<std::string> tokens_;  // id -> bytes
  int64_t byte_token_[256];          // single byte -> id
  // The trie: node 0 is the root; child of (node, byte) in children_; token id per node or -1.
  std::vector<int32_t> node_token_;
  std::unordered_map<uint64_t, int32_t> children_;
};

// "bytes" or a vocab file path.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& tokenizer, const std::string& vocab);

// Parses one Python string or bytes literal (as repr writes them) into raw bytes (UTF-8 for str).
std::string parse_python_literal(std::string_view literal);

}  // namespace rwkv7
