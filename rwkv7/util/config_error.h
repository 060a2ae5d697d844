// A value of the configuration that cannot be used: the message names the key (every layer that
// checks a key against the data or the model throws it, so the user sees one kind of refusal).
#pragma once
#include <stdexcept>

namespace rwkv7 {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace rwkv7
