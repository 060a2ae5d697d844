// The safetensors format (what web-rwkv, ai00 and most converters load), read and written here:
//
//   8 bytes   N, the header's length, little-endian unsigned
//   N bytes   a JSON object: {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
//             ..., "__metadata__": {"<key>": "<string>", ...}}
//   the rest  the tensors' bytes, little-endian, row-major; [b, e) is relative to this part
//
// The reader trusts nothing: the header length, the JSON, every dtype, shape and offset are
// checked, the tensors must tile the data exactly (no gaps, no overlap, nothing past the end), as
// the reference implementation demands. Errors are CheckpointError naming the file.
#pragma once
#include <string>

#include "rwkv7/io/checkpoint.h"

namespace rwkv7 {

StateDict read_safetensors(const std::string& path);
StateDict read_safetensors_bytes(const std::string& bytes, const std::string& name);

// Weights in either format: safetensors when the name ends in .safetensors, else torch.save.
bool is_safetensors_path(const std::string& path);
StateDict read_weights(const std::string& path);

// Tensors in the dict's order (names kept), each as its dtype; atomically (tmp, fsync, rename).
void write_safetensors(const std::string& path, const StateDict& tensors);

}  // namespace rwkv7
