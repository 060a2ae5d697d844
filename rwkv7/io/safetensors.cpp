#include "rwkv7/io/safetensors.h"

#include <ATen/ops/empty.h>
#include <c10/core/ScalarType.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include "rwkv7/io/fs.h"
#include "rwkv7/io/json.h"

namespace rwkv7 {
namespace {

constexpr uint64_t kMaxHeaderBytes = uint64_t(100) << 20;  // the reference implementation's limit

const std::pair<const char*, at::ScalarType> kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
    {"U8", at::kByte},    {"BOOL", at::kBool}};

at::ScalarType dtype_of(const std::string& name) {
  for (const auto& [n, t] : kDtypes)
    if (name == n) return t;
  throw std::runtime_error("unsupported dtype '" + name + "'");
}

const char* name_of(at::ScalarType t) {
  for (const auto& [n, s] : kDtypes)
    if (s == t) return n;
  throw std::runtime_error(std::string("no safetensors dtype for ") + c10::toString(t));
}

// A strict reader of the small JSON subset a header uses: objects, arrays, strings, non-negative
// integers. Anything else is an error.
class HeaderParser {
 public:
  explicit HeaderParser(const std::string& text) : s_(text) {}

  struct Entry {
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<uint64_t> offsets;
  };

  // name -> entry, in the header's order; __metadata__ is checked and dropped
  std::vector<std::pair<std::string, Entry>> parse() {
    std::vector<std::pair<std::string, Entry>> out;
    expect('{');
    if (peek() == '}') return ++i_, end(out);
    do {
      const std::string name = string();
      expect(':');
      if (name == "__metadata__") {
        string_map();
      } else {
        if (!names_.insert(name).second) fail("tensor '" + name + "' appears twice");
        out.emplace_back(name, entry(name));
      }
    } while (comma_or('}'));
    return end(out);
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error(fmt::format("header byte {}: {}", i_, why));
  }
  std::vector<std::pair<std::string, Entry>>& end(std::vector<std::pair<std::string, Entry>>& out) {
    skip_space();
    if (i_ != s_.size()) fail("text after the header's object");
    return out;
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  char peek() {
    skip_space();
    if (i_ >= s_.size()) fail("unexpected end of the header");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  bool comma_or(char close) {  // true after ',', false after `close`
    const char c = peek();
    ++i_;
    if (c == ',') return true;
    if (c != close) fail(std::string("expected ',' or '") + close + "'");
    return false;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape");
      const char e = s_[i_++];
      if (e == 'u') {
        uint32_t cp = hex4();
        if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair: \uD8xx\uDCxx
          if (i_ + 2 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') fail("lone surrogate");
          i_ += 2;
          const uint32_t lo = hex4();
          if (lo < 0xDC00 || lo >= 0xE000) fail("bad surrogate pair");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
          fail("lone surrogate");
        }
        append_utf8(out, cp);
      } else {
        const char* from = "\"\\/bfnrt";
        const char* to = "\"\\/\b\f\n\r\t";
        const char* p = std::strchr(from, e);
        if (!p || !*p) fail("bad escape");
        out += to[p - from];
      }
    }
  }
  uint32_t hex4() {  // exactly four hex digits
    if (i_ + 4 > s_.size()) fail("short \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) fail("bad \\u escape");
      v = v * 16 + uint32_t(d);
    }
    return v;
  }
  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18)), out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F)), out += char(0x80 | (cp & 0x3F));
    }
  }
  uint64_t integer() {
    skip_space();
    const size_t start = i_;
    uint64_t v = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (v > (UINT64_MAX - 9) / 10) fail("integer too large");
      v = v * 10 + uint64_t(s_[i_++] - '0');
    }
    if (i_ == start) fail("expected a non-negative integer");
    return v;
  }
  std::vector<uint64_t> integers() {
    std::vector<uint64_t> out;
    expect('[');
    if (peek() == ']') return ++i_, out;
    do {
      out.push_back(integer());
      if (out.size() > 64) fail("array too long");
    } while (comma_or(']'));
    return out;
  }
  void string_map() {
    expect('{');
    if (peek() == '}') return void(++i_);
    do {
      string();
      expect(':');
      string();
    } while (comma_or('}'));
  }
  Entry entry(const std::string& name) {
    Entry e;
    bool dtype = false, shape = false, offsets = false;
    expect('{');
    do {
      const std::string key = string();
      expect(':');
      if (key == "dtype") e.dtype = string(), dtype = true;
      else if (key == "shape") {
        for (uint64_t d : integers()) {
          if (d > uint64_t(1) << 48) fail("tensor '" + name + "': dimension too large");
          e.shape.push_back(static_cast<int64_t>(d));
        }
        shape = true;
      } else if (key == "data_offsets") e.offsets = integers(), offsets = true;
      else fail("tensor '" + name + "': unknown field '" + key + "'");
    } while (comma_or('}'));
    if (!dtype || !shape || !offsets) fail("tensor '" + name + "' lacks dtype, shape or data_offsets");
    if (e.offsets.size() != 2) fail("tensor '" + name + "': data_offsets must be [begin, end]");
    return e;
  }

  const std::string& s_;
  size_t i_ = 0;
  std::unordered_set<std::string> names_;
};

StateDict parse(const std::string& bytes) {
  if (bytes.size() < 8) throw std::runtime_error("shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int b = 7; b >= 0; --b) n = (n << 8) | static_cast<unsigned char>(bytes[b]);
  if (n > kMaxHeaderBytes) throw std::runtime_error(fmt::format("header length {} is implausibly large", n));
  if (n > bytes.size() - 8)
    throw std::runtime_error(fmt::format("header length {} runs past the file's {} bytes", n, bytes.size()));
  auto entries = HeaderParser(bytes.substr(8, n)).parse();
  const uint64_t data_start = 8 + n, data_size = bytes.size() - data_start;
  // The tensors must tile [0, data_size) exactly: sort by begin and walk.
  std::vector<size_t> order(entries.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {  // by (begin, end): empty tensors first
    const auto& x = entries[a].second.offsets;
    const auto& y = entries[b].second.offsets;
    return std::tie(x[0], x[1]) < std::tie(y[0], y[1]);
  });
  uint64_t expected_begin = 0;
  for (size_t i : order) {
    const auto& [name, e] = entries[i];
    const uint64_t begin = e.offsets[0], end = e.offsets[1];
    if (begin != expected_begin || end < begin)
      throw std::runtime_error(fmt::format("tensor '{}': data_offsets [{}, {}] {} (expected to begin at {})", name,
                                           begin, end, begin < expected_begin ? "overlap another tensor" : "leave a gap",
                                           expected_begin));
    expected_begin = end;
  }
  if (expected_begin != data_size)
    throw std::runtime_error(fmt::format("the tensors cover {} bytes, the file holds {}", expected_begin, data_size));
  StateDict out;
  for (const auto& [name, e] : entries) {
    const at::ScalarType dtype = dtype_of(e.dtype);
    uint64_t want = c10::elementSize(dtype);
    for (int64_t d : e.shape)
      if (__builtin_mul_overflow(want, uint64_t(d), &want)) throw std::runtime_error("tensor '" + name + "' too large");
    const uint64_t have = e.offsets[1] - e.offsets[0];
    if (want != have)
      throw std::runtime_error(fmt::format("tensor '{}': {} of shape [{}] needs {} bytes, its offsets give {}", name,
                                           e.dtype, fmt::join(e.shape, ", "), want, have));
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(dtype));
    if (want) std::memcpy(t.data_ptr(), bytes.data() + data_start + e.offsets[0], want);
    out.emplace_back(name, std::move(t));
  }
  return out;
}

}  // namespace

StateDict read_safetensors_bytes(const std::string& bytes, const std::string& name) {
  try {
    return parse(bytes);
  } catch (const std::exception& e) {
    throw CheckpointError(name + ": not a valid safetensors file (" + e.what() + ")");
  }
}

StateDict read_safetensors(const std::string& path) {
  if (!fs::is_regular_file(path)) throw CheckpointError(path + ": no such file");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  std::string bytes(static_cast<size_t>(std::max<std::streamoff>(0, f.tellg())), '\0');
  f.seekg(0);
  if (!f || !f.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    throw CheckpointError(path + ": cannot read");
  return read_safetensors_bytes(bytes, path);
}

void write_safetensors(const std::string& path, const StateDict& tensors) {
  std::string content;
  try {
    std::string header = "{\"__metadata__\":{\"format\":\"pt\"}", data;
    std::unordered_set<std::string> seen;
    for (const auto& [name, t] : tensors) {
      if (name == "__metadata__" || !seen.insert(name).second)
        throw std::runtime_error("tensor name '" + name + "' is reserved or repeated");
      const at::Tensor c = t.detach().cpu().contiguous();
      header += fmt::format(",\"{}\":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", json_escape(name),
                            name_of(c.scalar_type()), fmt::join(c.sizes(), ","), data.size(), data.size() + c.nbytes());
      data.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
    }
    header += "}";
    header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
    std::string file(8, '\0');
    for (int b = 0; b < 8; ++b) file[b] = static_cast<char>((uint64_t(header.size()) >> (8 * b)) & 0xff);
    content = file + header + data;
  } catch (const std::exception& e) {
    throw CheckpointError(path + ": " + e.what());
  }
  try {
    fs::write_file_atomically(path, content);
  } catch (const std::exception& e) {  // it names the file already
    throw CheckpointError(e.what());
  }
}

bool is_safetensors_path(const std::string& path) {
  const std::string ext = ".safetensors";
  return path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
}

StateDict read_weights(const std::string& path) {
  return is_safetensors_path(path) ? read_safetensors(path) : read_pth(path);
}

}  // namespace rwkv7
