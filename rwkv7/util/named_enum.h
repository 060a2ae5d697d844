// An enum class whose values have names: the choices of a config key (precision: fp32 | bf16).
// Each enum gives its names once, in a specialisation of EnumNames, and every reader and writer
// of the text (the YAML parser, describe(), the checkpoints' messages) goes through it.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace rwkv7 {

// Specialise with `static constexpr std::pair<E, const char*> rows[] = {{E::a, "a"}, ...};`
template <typename E>
struct EnumNames;

template <typename E>
const char* name_of(E value) {
  for (const auto& [v, name] : EnumNames<E>::rows)
    if (v == value) return name;
  return "?";
}

template <typename E>
std::optional<E> enum_from_name(std::string_view text) {
  for (const auto& [v, name] : EnumNames<E>::rows)
    if (text == name) return v;
  return std::nullopt;
}

// "a, b or c": the choices as a refusal lists them
template <typename E>
std::string enum_choices() {
  std::string s;
  const size_t n = std::size(EnumNames<E>::rows);
  for (size_t i = 0; i < n; ++i)
    s += std::string(i == 0 ? "" : i + 1 == n ? " or " : ", ") + EnumNames<E>::rows[i].second;
  return s;
}

}  // namespace rwkv7
