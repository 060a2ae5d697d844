#include "rwkv7/data/data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>

namespace rwkv7 {

namespace {

size_t dtype_size(int code) {
  switch (code) {
    case 1: case 2: return 1;  // uint8, int8
    case 3: case 8: return 2;  // int16, uint16
    case 4: return 4;          // int32
    case 5: return 8;          // int64
    default: return 0;         // 6, 7 are floating point: not token ids
  }
}

int64_t token_at(const uint8_t* p, int code) {
  switch (code) {
    case 1: return *p;
    case 2: return static_cast<int8_t>(*p);
    case 3: { int16_t x; std::memcpy(&x, p, 2); return x; }
    case 8: { uint16_t x; std::memcpy(&x, p, 2); return x; }
    case 4: { int32_t x; std::memcpy(&x, p, 4); return x; }
    default: { int64_t x; std::memcpy(&x, p, 8); return x; }
  }
}

}  // namespace

BinIdx::BinIdx(const std::string& prefix) : prefix_(prefix) {
  const std::string idx_path = prefix + ".idx", bin_path = prefix + ".bin";
  std::ifstream idx(idx_path, std::ios::binary);
  if (!idx) throw DataError(idx_path + ": cannot open");
  std::string bytes((std::istreambuf_iterator<char>(idx)), std::istreambuf_iterator<char>());
  auto fail = [&](const std::string& what) { throw DataError(idx_path + ": " + what); };
  const size_t header = 9 + 8 + 1 + 8 + 8;
  if (bytes.size() < header) fail("too short for a binidx index");
  if (std::memcmp(bytes.data(), "MMIDIDX\0\0", 9) != 0) fail("bad magic (not an MMIDIDX index)");
  uint64_t version, n_seq, n_doc;
  std::memcpy(&version, bytes.data() + 9, 8);
  if (version != 1) fail("unsupported version " + std::to_string(version));
  dtype_code_ = static_cast<uint8_t>(bytes[17]);
  item_size_ = dtype_size(dtype_code_);
  if (!item_size_) fail("unsupported token dtype code " + std::to_string(dtype_code_));
  std::memcpy(&n_seq, bytes.data() + 18, 8);
  std::memcpy(&n_doc, bytes.data() + 26, 8);
  const unsigned __int128 want =
      header + static_cast<unsigned __int128>(n_seq) * 12 + static_cast<unsigned __int128>(n_doc) * 8;
  if (want != bytes.size())
    fail("size " + std::to_string(bytes.size()) + " does not match its counts (" +
         std::to_string(n_seq) + " sequences, " + std::to_string(n_doc) + " doc entries)");
  sizes_.resize(n_seq);
  std::memcpy(sizes_.data(), bytes.data() + header, n_seq * 4);
  uint64_t total = 0;
  starts_.reserve(sizes_.size());
  for (int32_t s : sizes_) {
    if (s < 0) fail("negative sequence size");
    starts_.push_back(total);
    total += static_cast<uint64_t>(s);
  }

  const int fd = ::open(bin_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw DataError(bin_path + ": cannot open");
  struct stat st {};
  ::fstat(fd, &st);
  bin_bytes_ = static_cast<size_t>(st.st_size);
  if (bin_bytes_ < total * item_size_) {
    ::close(fd);
    throw DataError(bin_path + ": " + std::to_string(bin_bytes_) + " bytes, shorter than the " +
                    std::to_string(total * item_size_) + " its index describes");
  }
  num_tokens_ = bin_bytes_ / item_size_;  // the seed: len(bin_buffer) // dtype_size
  bin_fd_ = fd;
}

uint64_t BinIdx::read_document(uint64_t doc, uint64_t length, int64_t* out) const {
  if (doc >= starts_.size())
    throw DataError(prefix_ + ": document " + std::to_string(doc) + " of " + std::to_string(starts_.size()));
  const uint64_t start = starts_[doc], size = static_cast<uint64_t>(sizes_[doc]);
  if (start + length <= num_tokens_) {
    read(start, length, out);
  } else {  // RWKV-PEFT's binidx pad: the document, then the data's first tokens
    read(start, size, out);
    read(0, length - size, out + size);
  }
  return std::min(size, length);
}

BinIdx::~BinIdx() {
  if (bin_fd_ >= 0) ::close(bin_fd_);
}

// A short read means the file is no longer what was opened (cut short, or replaced by a
// shorter one): a clear error instead of the SIGBUS that a mapped file gives.
void BinIdx::read_bytes(uint64_t byte_offset, size_t n, uint8_t* out) const {
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(bin_fd_, out + done, n - done, static_cast<off_t>(byte_offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      throw DataError(prefix_ + ".bin: " + (got < 0 ? std::string(std::strerror(errno)) : "unexpected end of file") +
                      " reading at byte " + std::to_string(byte_offset + done) +
                      ": the file changed under the run (it was " + std::to_string(bin_bytes_) +
                      " bytes when opened); restore it and resume");
    done += static_cast<size_t>(got);
  }
}

void BinIdx::read(uint64_t offset, uint64_t count, int64_t* out) const {
  if (offset > num_tokens_ || count > num_tokens_ - offset)
    throw DataError(prefix_ + ".bin: read of " + std::to_string(count) + " tokens at " +
                    std::to_string(offset) + " runs past its " + std::to_string(num_tokens_));
  std::vector<uint8_t> raw(count * item_size_);
  read_bytes(offset * item_size_, raw.size(), raw.data());
  for (uint64_t i = 0; i < count; ++i) out[i] = token_at(raw.data() + i * item_size_, dtype_code_);
}

int64_t BinIdx::max_token() const {
  int64_t m = 0;
  std::vector<uint8_t> raw;
  const uint64_t chunk = (uint64_t(1) << 22) / item_size_;  // 4 MiB at a time
  for (uint64_t first = 0; first < num_tokens_; first += chunk) {
    const uint64_t n = std::min(chunk, num_tokens_ - first);
    raw.resize(n * item_size_);
    read_bytes(first * item_size_, raw.size(), raw.data());
    for (uint64_t i = 0; i < n; ++i) m = std::max(m, token_at(raw.data() + i * item_size_, dtype_code_));
  }
  return m;
}

BinIdxWriter::BinIdxWriter(const std::string& prefix) : prefix_(prefix) {
  bin_ = std::fopen((prefix + ".bin.tmp").c_str(), "wb");
  if (!bin_) throw DataError(prefix + ".bin: cannot open for writing");
}

BinIdxWriter::~BinIdxWriter() {
  if (bin_) std::fclose(bin_);
  if (!finished_) {
    std::remove((prefix_ + ".bin.tmp").c_str());
    std::remove((prefix_ + ".idx.tmp").c_str());
  }
}

void BinIdxWriter::add_document(const std::vector<int64_t>& tokens) {
  std::vector<uint16_t> buf(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] > 65535)
      throw DataError(prefix_ + ".bin: token id " + std::to_string(tokens[i]) + " does not fit uint16");
    buf[i] = static_cast<uint16_t>(tokens[i]);
  }
  if (std::fwrite(buf.data(), 2, buf.size(), bin_) != buf.size())
    throw DataError(prefix_ + ".bin: write failed (disk full?)");
  sizes_.push_back(static_cast<int32_t>(tokens.size()));
  tokens_ += tokens.size();
}

void BinIdxWriter::finish() {
  const uint64_t n = sizes_.size(), n_doc = n + 1, version = 1;
  std::string idx("MMIDIDX\0\0", 9);
  auto put = [&](const void* p, size_t k) { idx.append(static_cast<const char*>(p), k); };
  put(&version, 8);
  idx += static_cast<char>(8);  // dtype code 8: uint16
  put(&n, 8);
  put(&n_doc, 8);
  put(sizes_.data(), 4 * n);
  int64_t pointer = 0;
  for (int32_t size : sizes_) {
    put(&pointer, 8);
    pointer += int64_t(size) * 2;
  }
  for (int64_t d = 0; d <= static_cast<int64_t>(n); ++d) put(&d, 8);
  std::FILE* f = std::fopen((prefix_ + ".idx.tmp").c_str(), "wb");
  bool ok = f && std::fwrite(idx.data(), 1, idx.size(), f) == idx.size() && std::fflush(f) == 0 &&
            ::fsync(fileno(f)) == 0;
  if (f) ok = (std::fclose(f) == 0) && ok;
  ok = ok && std::fflush(bin_) == 0 && ::fsync(fileno(bin_)) == 0;
  ok = (std::fclose(bin_) == 0) && ok;
  bin_ = nullptr;
  ok = ok && std::rename((prefix_ + ".bin.tmp").c_str(), (prefix_ + ".bin").c_str()) == 0 &&
       std::rename((prefix_ + ".idx.tmp").c_str(), (prefix_ + ".idx").c_str()) == 0;
  if (!ok) throw DataError(prefix_ + ".bin/.idx: write failed (disk full or not writable?)");
  finished_ = true;
}

bool is_prime(uint64_t n) {
  if (n <= 1) return false;
  if (n <= 3) return true;
  if (n % 2 == 0 || n % 3 == 0) return false;
  for (uint64_t i = 5; i * i <= n; i += 6)
    if (n % i == 0 || n % (i + 2) == 0) return false;
  return true;
}

uint64_t sample_offset(uint64_t p, uint64_t ctx_len, uint64_t epoch_samples, uint64_t epoch,
                       uint64_t idx, uint64_t rank, uint64_t world_size) {
  using u128 = unsigned __int128;
  const uint64_t ii = 1 + epoch * epoch_samples + idx * world_size + rank;
  // factor as the seed computes it: a Python float product, truncated
  const uint64_t factor = static_cast<uint64_t>(static_cast<double>(p) * ((std::sqrt(5.0) - 1.0) / 2.0));
  const u128 i = ii % p;
  const u128 cube = (i * i % p) * i % p;
  const uint64_t slot = static_cast<uint64_t>((factor % p) * cube % p);
  return slot * ctx_len;
}

std::string check_magic_prime(uint64_t magic_prime, uint64_t num_tokens, uint64_t ctx_len) {
  const uint64_t slots = ctx_len ? num_tokens / ctx_len : 0;
  const std::string hint =
      " (for this data and ctx_len: " + std::to_string(suggest_magic_prime(num_tokens, ctx_len)) + ")";
  if (!is_prime(magic_prime)) return std::to_string(magic_prime) + " is not prime" + hint;
  if (magic_prime % 3 != 2) return std::to_string(magic_prime) + " is not 2 mod 3" + hint;
  const double ratio = slots ? static_cast<double>(magic_prime) / slots : 1e9;
  if (!(ratio > 0.9 && ratio <= 1.0))
    return std::to_string(magic_prime) + " does not fit " + std::to_string(slots) +
           " ctx_len slots (needs 0.9 < magic_prime / slots <= 1)" + hint;
  return "";
}

uint64_t suggest_magic_prime(uint64_t num_tokens, uint64_t ctx_len) {
  if (!ctx_len || num_tokens / ctx_len < 3) return 0;
  for (uint64_t p = num_tokens / ctx_len - 1; p >= 2; --p)
    if (p % 3 == 2 && is_prime(p)) return p;
  return 0;
}

}  // namespace rwkv7
