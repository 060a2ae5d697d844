// Writing JSON strings: the one escaper for every JSON the project writes (metrics.jsonl, eval
// results, safetensors headers).
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace rwkv7 {

// The body of a JSON string (without its quotes): quotes, backslashes and every control
// character escaped; other bytes (UTF-8 included) as they are.
inline std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out;
}

}  // namespace rwkv7
