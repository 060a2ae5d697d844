#include "rwkv7/io/checkpoint.h"

#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "rwkv7/io/fs.h"
#include "rwkv7/io/pickle.h"

namespace rwkv7 {
namespace {

constexpr size_t kMaxPickleBytes = size_t(1) << 28;  // data.pkl holds names and shapes only

void flatten(const PickleRef& dict, const std::string& prefix, StateDict& out, int depth) {
  if (depth > 8) throw std::runtime_error("dicts nested too deeply");
  for (const auto& [key, value] : dict->dict) {
    std::string name;
    if (key->kind == PickleValue::Kind::String) name = key->text;
    else if (key->kind == PickleValue::Kind::Int) name = std::to_string(key->integer);
    else throw std::runtime_error("a dict key is neither a string nor an integer");
    name = prefix.empty() ? name : prefix + "." + name;
    if (value->kind == PickleValue::Kind::Tensor) out.emplace_back(name, value->tensor);
    else if (value->kind == PickleValue::Kind::Dict) flatten(value, name, out, depth + 1);
    // other leaves (numbers, strings, None) carry no weights: skipped
  }
}

StateDict read_zip(caffe2::serialize::PyTorchStreamReader& reader) {
  if (!reader.hasRecord("data.pkl"))
    throw std::runtime_error("no data.pkl record (not a torch.save file)");
  const size_t pkl_size = reader.getRecordSize("data.pkl");
  if (pkl_size > kMaxPickleBytes) throw std::runtime_error("data.pkl is implausibly large");
  std::string pkl(pkl_size, '\0');
  reader.getRecord("data.pkl", pkl.data(), pkl.size());

  StorageLoader load = [&](const std::string& key, at::ScalarType dtype, int64_t numel) {
    const std::string name = "data/" + key;
    if (!reader.hasRecord(name)) throw std::runtime_error("missing record " + name);
    const size_t have = reader.getRecordSize(name);
    const size_t want = static_cast<size_t>(numel) * c10::elementSize(dtype);
    if (have != want)
      throw std::runtime_error("record " + name + " has " + std::to_string(have) +
                               " bytes, its tensor needs " + std::to_string(want));
    at::Tensor storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
    if (want > 0) reader.getRecord(name, storage.data_ptr(), want);
    return storage;
  };
  PickleRef root = unpickle(pkl, load);
  if (root->kind != PickleValue::Kind::Dict)
    throw std::runtime_error("the pickled object is not a dict of tensors");
  StateDict out;
  flatten(root, "", out, 0);
  return out;
}

}  // namespace

template <typename Source>
StateDict read_source(const std::string& name, Source source) {
  try {
    caffe2::serialize::PyTorchStreamReader reader(source);
    return read_zip(reader);
  } catch (const c10::Error& e) {
    std::string why = e.what_without_backtrace();
    throw CheckpointError(name + ": not a readable torch.save zip (" + why.substr(0, why.find('\n')) + ")");
  } catch (const std::exception& e) {
    throw CheckpointError(name + ": " + e.what());
  }
}

StateDict read_pth(const std::string& path) {
  if (!fs::is_regular_file(path)) throw CheckpointError(path + ": no such file");
  // torch.save's format before PyTorch 1.6 is a bare pickle stream (protocol 2: 0x80 0x02), not a zip
  unsigned char head[2] = {0, 0};
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    const size_t n = std::fread(head, 1, 2, f);
    std::fclose(f);
    if (n == 2 && head[0] == 0x80 && head[1] <= 5)
      throw CheckpointError(path + ": a torch.save file in the legacy (non-zip) format of PyTorch < 1.6; in "
                                   "Python: torch.save(torch.load(path), new_path) writes the zip format read here");
  }
  return read_source(path, path);
}

StateDict read_pth_bytes(const std::string& bytes, const std::string& name) {
  std::istringstream in(bytes);
  return read_source<std::istream*>(name, &in);
}

void write_pth(const std::string& path, const StateDict& tensors) {
  StateDict cpu;
  cpu.reserve(tensors.size());
  for (const auto& [name, t] : tensors) cpu.emplace_back(name, t.detach().cpu().contiguous());

  // The zip writer must never see a failed write: it throws, and its destructor then writes the
  // end of the archive again and throws a second time (std::terminate). So the sink swallows
  // errors, remembers the first one, and the file is judged after the writer is done.
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw CheckpointError(path + ": cannot open " + tmp + " for writing (" + std::strerror(errno) + ")");
  int write_errno = 0;
  std::string failure;
  try {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* buf, size_t n) -> size_t {
      if (write_errno == 0 && n && std::fwrite(buf, 1, n, f) != n) write_errno = errno ? errno : EIO;
      return n;
    });
    const std::string pkl = pickle_tensor_dict(cpu);
    writer.writeRecord("data.pkl", pkl.data(), pkl.size());
    writer.writeRecord("byteorder", "little", 6);
    for (size_t i = 0; i < cpu.size(); ++i)
      writer.writeRecord("data/" + std::to_string(i), cpu[i].second.data_ptr(),
                         cpu[i].second.nbytes());
    writer.writeEndOfFile();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (write_errno == 0 && std::fflush(f) != 0) write_errno = errno;
  if (write_errno == 0 && ::fsync(fileno(f)) != 0) write_errno = errno;
  if (std::fclose(f) != 0 && write_errno == 0) write_errno = errno;
  if (failure.empty() && write_errno != 0) failure = std::strerror(write_errno);
  if (failure.empty() && std::rename(tmp.c_str(), path.c_str()) != 0) failure = std::strerror(errno);
  if (!failure.empty()) {
    std::remove(tmp.c_str());
    throw CheckpointError(path + ": write failed (" + failure + "); the previous file, if any, is unchanged");
  }
  fs::sync_parent_directory(path);  // make the rename itself durable
}

const at::Tensor& find_tensor(const StateDict& dict, const std::string& name,
                              const std::string& path) {
  for (const auto& kv : dict)
    if (kv.first == name) return kv.second;
  throw CheckpointError((path.empty() ? std::string("checkpoint") : path) + ": no tensor '" +
                        name + "'");
}

bool has_tensor(const StateDict& dict, const std::string& name) {
  for (const auto& kv : dict)
    if (kv.first == name) return true;
  return false;
}

}  // namespace rwkv7
