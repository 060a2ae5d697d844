// One JSON object per line, {"text": "..."}: the text field's value, decoded and checked to be
// valid UTF-8. A small parser of our own: fast, and exact about what it refuses.
#pragma once
#include <string>
#include <string_view>

namespace rwkv7 {

// Returns "" on success with the text in *text, else why the line is refused (not JSON, no
// "text" string, invalid UTF-8).
std::string parse_text_line(std::string_view line, std::string* text);

bool is_valid_utf8(std::string_view s);

}  // namespace rwkv7
