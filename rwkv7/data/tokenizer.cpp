#include "rwkv7/data/tokenizer.h"

#include "rwkv7/io/fs.h"

#include <fstream>
#include <stdexcept>

namespace rwkv7 {

namespace {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t hex_value(std::string_view s) {
  uint32_t v = 0;
  for (char c : s) {
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else throw std::runtime_error("bad hex digit in escape");
  }
  return v;
}

}  // namespace

std::string parse_python_literal(std::string_view lit) {
  const bool is_bytes = !lit.empty() && lit[0] == 'b';
  if (is_bytes) lit.remove_prefix(1);
  if (lit.size() < 2 || (lit[0] != '\'' && lit[0] != '"') || lit.back() != lit[0])
    throw std::runtime_error("not a quoted literal");
  lit = lit.substr(1, lit.size() - 2);
  std::string out;
  for (size_t i = 0; i < lit.size(); ++i) {
    const char c = lit[i];
    if (c != '\\') {
      out += c;  // raw UTF-8 (str) or ASCII (bytes)
      continue;
    }
    if (++i >= lit.size()) throw std::runtime_error("dangling backslash");
    switch (lit[i]) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '0': out += '\0'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'x': {
        if (i + 2 >= lit.size()) throw std::runtime_error("short \\x escape");
        const uint32_t v = hex_value(lit.substr(i + 1, 2));
        i += 2;
        if (is_bytes) out += static_cast<char>(v);
        else append_utf8(out, v);  // in a str, \xhh is the code point U+00hh
        break;
      }
      case 'u': case 'U': {
        const size_t n = lit[i] == 'u' ? 4 : 8;
        if (is_bytes || i + n >= lit.size()) throw std::runtime_error("bad unicode escape");
        append_utf8(out, hex_value(lit.substr(i + 1, n)));
        i += n;
        break;
      }
      default: throw std::runtime_error(std::string("unknown escape \\") + lit[i]);
    }
  }
  return out;
}

std::vector<int64_t> ByteTokenizer::encode(std::string_view s) const {
  std::vector<int64_t> ids(s.size());
  for (size_t i = 0; i < s.size(); ++i) ids[i] = static_cast<uint8_t>(s[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  for (int64_t id : ids)
    if (id > 0 && id < 256) s += static_cast<char>(id);
  return s;
}

WorldTokenizer::WorldTokenizer(const std::string& path) : tokens_(1), node_token_(1, -1) {
  if (fs::is_directory(path)) throw std::runtime_error(path + ": is a directory, not a vocabulary file");
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open the vocabulary");
  std::fill(std::begin(byte_token_), std::end(byte_token_), -1);
  std::string line;
  for (int64_t n = 1; std::getline(f, line); ++n) {
    const size_t a = line.find(' '), b = line.rfind(' ');
    try {
      if (a == std::string::npos || b <= a) throw std::runtime_error("expected 'id literal length'");
      const int64_t id = std::stoll(line.substr(0, a));
      const size_t len = std::stoul(line.substr(b + 1));
      const std::string bytes = parse_python_literal(std::string_view(line).substr(a + 1, b - a - 1));
      if (bytes.size() != len) throw std::runtime_error("literal is " + std::to_string(bytes.size()) + " bytes, not " + std::to_string(len));
      if (id != static_cast<int64_t>(tokens_.size())) throw std::runtime_error("ids must run 1, 2, 3, ...");
      if (bytes.size() < tokens_.back().size()) throw std::runtime_error("tokens must be sorted by byte length");
      tokens_.push_back(bytes);
    } catch (const std::exception& e) {
      throw std::runtime_error(path + ":" + std::to_string(n) + ": " + e.what());
    }
  }
  for (int64_t id = 1; id < static_cast<int64_t>(tokens_.size()); ++id) {
    const std::string& t = tokens_[id];
    if (t.size() == 1) byte_token_[static_cast<uint8_t>(t[0])] = id;
    int32_t node = 0;
    for (char c : t) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(c);
      auto it = children_.find(key);
      if (it == children_.end()) {
        it = children_.emplace(key, static_cast<int32_t>(node_token_.size())).first;
        node_token_.push_back(-1);
      }
      node = it->second;
    }
    node_token_[node] = static_cast<int32_t>(id);
  }
  for (int b = 0; b < 256; ++b)
    if (byte_token_[b] < 0) throw std::runtime_error(path + ": no single-byte token for byte " + std::to_string(b));
}

std::vector<int64_t> WorldTokenizer::encode(std::string_view src) const {
  std::vector<int64_t> ids;
  ids.reserve(src.size() / 3 + 1);
  size_t i = 0;
  while (i < src.size()) {
    int64_t id = byte_token_[static_cast<uint8_t>(src[i])];
    size_t len = 1;
    int32_t node = 0;
    for (size_t j = i; j < src.size(); ++j) {  // walk the trie; keep the longest token seen
      auto it = children_.find((static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(src[j]));
      if (it == children_.end()) break;
      node = it->second;
      if (node_token_[node] >= 0) {
        id = node_token_[node];
        len = j - i + 1;
      }
    }
    ids.push_back(id);
    i += len;
  }
  return ids;
}

std::string WorldTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  for (int64_t id : ids)
    if (id > 0 && id < static_cast<int64_t>(tokens_.size())) s += tokens_[id];
  return s;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& tokenizer, const std::string& vocab) {
  if (!vocab.empty()) return std::make_unique<WorldTokenizer>(vocab);
  if (tokenizer == "bytes") return std::make_unique<ByteTokenizer>();
  throw std::runtime_error("choose --tokenizer bytes or --vocab rwkv_vocab_v20230424.txt");
}

}  // namespace rwkv7
