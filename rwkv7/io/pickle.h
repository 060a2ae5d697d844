// The small part of Python's pickle that torch.save uses for a dict of tensors.
//
// torch.save writes a zip (see checkpoint.h) whose data.pkl is a protocol-2 pickle: a dict or
// OrderedDict of name -> torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...),
// where each storage is a persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)
// naming the zip record data/<key>. We read that subset (and nested dicts) and write a plain
// dict that Python's torch.load(weights_only=True) accepts.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rwkv7 {

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;  // Int; Storage: numel
  double real = 0.0;
  std::string text;     // String; Global: "module.name"; Storage: record key
  std::vector<PickleRef> items;                       // Tuple, List
  std::vector<std::pair<PickleRef, PickleRef>> dict;  // Dict, in insertion order
  at::ScalarType dtype = at::kFloat;                  // Storage
  at::Tensor tensor;                                  // Tensor
};

// Loads one storage: `numel` elements of `dtype` from the record named `key`.
using StorageLoader = std::function<at::Tensor(const std::string& key, at::ScalarType dtype,
                                               int64_t numel)>;

// Runs the pickle in `bytes`; throws std::runtime_error naming the fault and its byte offset.
PickleRef unpickle(const std::string& bytes, const StorageLoader& load_storage);

// Writes a dict name -> tensor; tensor i is stored in record data/<i>. Tensors must be
// contiguous CPU tensors.
std::string pickle_tensor_dict(const std::vector<std::pair<std::string, at::Tensor>>& tensors);

}  // namespace rwkv7
