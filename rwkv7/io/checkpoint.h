// .pth files in the torch.save zip format, read and written without Python.
//
// A .pth is a zip (libtorch's PyTorchStreamReader/Writer) holding <archive>/data.pkl (see
// pickle.h), <archive>/data/<key> (raw little-endian storage bytes) and version/byteorder
// records. We read Python's plain dicts and the OrderedDicts that state_dict() saves, and
// write plain dicts that torch.load(path, weights_only=True) reads, dtypes kept.
#pragma once
#include <ATen/core/Tensor.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rwkv7 {

// Name -> tensor, in file order. Nested dicts are flattened as "outer.inner".
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws CheckpointError "<path>: <fault>" for a missing, malformed or truncated file.
StateDict read_pth(const std::string& path);

// The same from the bytes of a .pth (for tests and the fuzzer); `name` goes into messages.
StateDict read_pth_bytes(const std::string& bytes, const std::string& name);

// Writes atomically: a temporary file beside `path`, fsync, rename. Tensors go to the CPU,
// contiguous, with their dtypes.
void write_pth(const std::string& path, const StateDict& tensors);

// The tensor called `name`, or CheckpointError naming the file and the missing key.
const at::Tensor& find_tensor(const StateDict& dict, const std::string& name,
                              const std::string& path = "");
// Whether the dict holds a tensor called `name`.
bool has_tensor(const StateDict& dict, const std::string& name);

}  // namespace rwkv7
