#include "rwkv7/data/jsonl.h"

#include <cctype>
#include <cstdint>

namespace rwkv7 {

namespace {

struct Parser {
  std::string_view s;
  size_t i = 0;
  std::string error;

  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
  }
  bool fail(const std::string& e) {
    if (error.empty()) error = e;
    return false;
  }
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool u16(uint32_t* v) {
    if (i + 4 > s.size()) return fail("short \\u escape");
    *v = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = hex(s[i + k]);
      if (h < 0) return fail("bad \\u escape");
      *v = (*v << 4) | h;
    }
    i += 4;
    return true;
  }
  bool string(std::string* out) {
    if (i >= s.size() || s[i] != '"') return fail("expected a string");
    ++i;
    while (i < s.size()) {
      const char c = s[i++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
      if (c != '\\') {
        if (out) *out += c;
        continue;
      }
      if (i >= s.size()) break;
      const char e = s[i++];
      char plain = 0;
      switch (e) {
        case '"': plain = '"'; break;
        case '\\': plain = '\\'; break;
        case '/': plain = '/'; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!u16(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
            uint32_t lo;
            if (i + 2 > s.size() || s[i] != '\\' || s[i + 1] != 'u') return fail("lone surrogate");
            i += 2;
            if (!u16(&lo) || lo < 0xDC00 || lo >= 0xE000) return fail("lone surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            return fail("lone surrogate");
          }
          if (out) {
            if (cp < 0x80) *out += static_cast<char>(cp);
            else if (cp < 0x800) { *out += static_cast<char>(0xC0 | (cp >> 6)); *out += static_cast<char>(0x80 | (cp & 0x3F)); }
            else if (cp < 0x10000) { *out += static_cast<char>(0xE0 | (cp >> 12)); *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); *out += static_cast<char>(0x80 | (cp & 0x3F)); }
            else { *out += static_cast<char>(0xF0 | (cp >> 18)); *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F)); *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)); *out += static_cast<char>(0x80 | (cp & 0x3F)); }
          }
          continue;
        }
        default: return fail("bad escape");
      }
      if (out) *out += plain;
    }
    return fail("unterminated string");
  }
  bool value(int depth) {  // skips any JSON value
    if (depth > 64) return fail("nested too deeply");
    ws();
    if (i >= s.size()) return fail("expected a value");
    const char c = s[i];
    if (c == '"') return string(nullptr);
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i;
      ws();
      if (i < s.size() && s[i] == close) return ++i, true;
      while (true) {
        if (c == '{') {
          ws();
          if (!string(nullptr)) return false;
          ws();
          if (i >= s.size() || s[i++] != ':') return fail("expected ':'");
        }
        if (!value(depth + 1)) return false;
        ws();
        if (i < s.size() && s[i] == ',') { ++i; continue; }
        if (i < s.size() && s[i] == close) return ++i, true;
        return fail("expected ',' or a closing bracket");
      }
    }
    for (std::string_view lit : {"true", "false", "null"})
      if (s.substr(i, lit.size()) == lit) return i += lit.size(), true;
    const size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '-' || s[i] == '+' || s[i] == '.' || s[i] == 'e' || s[i] == 'E')) ++i;
    return i > start ? true : fail("unexpected character");
  }
};

}  // namespace

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    else if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const unsigned char d = s[i + k];
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp < 0xE000))
      return false;
    i += n + 1;
  }
  return true;
}

std::string parse_text_line(std::string_view line, std::string* text) {
  Parser p{line};
  p.ws();
  if (p.i >= line.size() || line[p.i] != '{') return "not a JSON object";
  ++p.i;
  bool found = false;
  p.ws();
  if (p.i < line.size() && line[p.i] == '}') return "no \"text\" field";
  while (true) {
    p.ws();
    std::string key;
    if (!p.string(&key)) return "not JSON: " + p.error;
    p.ws();
    if (p.i >= line.size() || line[p.i++] != ':') return "not JSON: expected ':'";
    p.ws();
    if (key == "text") {
      if (p.i >= line.size() || line[p.i] != '"') return "\"text\" is not a string";
      text->clear();
      if (!p.string(text)) return "not JSON: " + p.error;
      found = true;
    } else if (!p.value(0)) {
      return "not JSON: " + p.error;
    }
    p.ws();
    if (p.i < line.size() && line[p.i] == ',') { ++p.i; continue; }
    if (p.i < line.size() && line[p.i] == '}') { ++p.i; break; }
    return "not JSON: expected ',' or '}'";
  }
  p.ws();
  if (p.i != line.size()) return "not JSON: trailing characters";
  if (!found) return "no \"text\" field";
  if (!is_valid_utf8(*text)) return "invalid UTF-8";
  return "";
}

}  // namespace rwkv7
