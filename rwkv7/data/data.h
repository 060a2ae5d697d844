// Training data: Megatron's binidx token files (memory-mapped) and the seed's magic-prime
// sampler, which visits every ctx_len slot of the data once per magic_prime samples.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace rwkv7 {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// <prefix>.idx: "MMIDIDX\0\0", u64 version (1), u8 dtype code, u64 n_seq, u64 n_doc,
//               i32 sizes[n_seq], i64 pointers[n_seq] (byte offsets), i64 doc_idx[n_doc]
// <prefix>.bin: the tokens, back to back. The trainer reads it as one flat stream.
class BinIdx {
 public:
  explicit BinIdx(const std::string& prefix);  // throws DataError naming file and fault
  ~BinIdx();
  BinIdx(const BinIdx&) = delete;
  BinIdx& operator=(const BinIdx&) = delete;

  uint64_t num_tokens() const { return num_tokens_; }
  uint64_t num_documents() const { return sizes_.size(); }
  const std::vector<int32_t>& document_sizes() const { return sizes_; }
  // tokens [offset, offset + count) of the flat stream; throws DataError past the end.
  void read(uint64_t offset, uint64_t count, int64_t* out) const;
  // RWKV-PEFT's dataload pad: `length` tokens from the start of document `doc`, running on into
  // the next documents (past the end of the data: on from its first token). Returns how many of
  // them belong to the document, min(its size, length).
  uint64_t read_document(uint64_t doc, uint64_t length, int64_t* out) const;
  // The largest token id in the file (a scan; for checking against vocab_size).
  int64_t max_token() const;

 private:
  std::string prefix_;
  int dtype_code_ = 0;
  size_t item_size_ = 0;
  std::vector<int32_t> sizes_;
  std::vector<uint64_t> starts_;  // token offset of each document in the flat stream
  uint64_t num_tokens_ = 0;
  int bin_fd_ = -1;  // read with pread, not mmap: a file cut short under a run is an error, not SIGBUS
  size_t bin_bytes_ = 0;
  void read_bytes(uint64_t byte_offset, size_t n, uint8_t* out) const;
};

// Writes <prefix>.bin / .idx (uint16 tokens, MMIDIDX version 1, one document per call) into
// temporary files that finish() syncs and renames into place; destroyed unfinished, it leaves
// nothing behind.
class BinIdxWriter {
 public:
  explicit BinIdxWriter(const std::string& prefix);
  ~BinIdxWriter();
  BinIdxWriter(const BinIdxWriter&) = delete;
  BinIdxWriter& operator=(const BinIdxWriter&) = delete;

  void add_document(const std::vector<int64_t>& tokens);  // throws DataError for ids > 65535
  void finish();
  uint64_t num_tokens() const { return tokens_; }
  uint64_t num_documents() const { return sizes_.size(); }

 private:
  std::string prefix_;
  std::FILE* bin_ = nullptr;
  std::vector<int32_t> sizes_;
  uint64_t tokens_ = 0;
  bool finished_ = false;
};

bool is_prime(uint64_t n);

// The seed's sample position (dataset.py): with ii = 1 + epoch * epoch_samples + idx *
// world_size + rank and factor = int(magic_prime * (sqrt(5) - 1) / 2), the sample starts at
// token ((factor * ii^3) mod magic_prime) * ctx_len. Reduced as it goes: never overflows.
uint64_t sample_offset(uint64_t magic_prime, uint64_t ctx_len, uint64_t epoch_samples,
                       uint64_t epoch, uint64_t idx, uint64_t rank, uint64_t world_size);

// Why magic_prime does not suit data of `num_tokens` tokens at `ctx_len`, or "" if it does:
// prime, 2 mod 3, and 0.9 < magic_prime / (num_tokens / ctx_len) <= 1.
std::string check_magic_prime(uint64_t magic_prime, uint64_t num_tokens, uint64_t ctx_len);

// The largest prime p = 2 mod 3 with p <= num_tokens / ctx_len - 1 (what the seed's README
// tells users to pick), or 0 if none.
uint64_t suggest_magic_prime(uint64_t num_tokens, uint64_t ctx_len);

}  // namespace rwkv7
