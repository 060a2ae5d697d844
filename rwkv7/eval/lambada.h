// LAMBADA, scored the way RWKV-LM reports it (RWKV-v7/rwkv_v7_demo.py): for each text,
//   src, last = text.rsplit(' ', 1)
//   context   = [0] + encode(src)           (0: end-of-text, the document separator)
//   target    = encode(" " + last)
// one forward pass over context + target; the document's score is the sum over target tokens of
// log softmax at the position before each, and it is correct when every target token is the
// argmax there. ppl = exp(-(sum of scores) / n), acc = correct / n.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rwkv7/data/tokenizer.h"
#include "rwkv7/model/inference.h"
#include "rwkv7/model/model.h"

namespace rwkv7 {

struct LambadaDocument {
  int64_t line = 0;                // 1-based line in the input
  std::vector<int64_t> context;    // [0] + encode(src)
  std::vector<int64_t> target;     // encode(" " + last)
};

// The documents of a jsonl file ({"text": ...} per line). A bad line (not JSON, no text, no space
// in the text, an empty last word) throws naming the line, or with `skip_bad_lines` is reported
// on stderr and counted in *skipped. `limit` > 0 keeps the first `limit` documents.
std::vector<LambadaDocument> read_lambada(const std::string& path, const Tokenizer& tok, bool skip_bad_lines,
                                          int64_t limit, int64_t* skipped);

struct LambadaScore {
  int64_t n = 0;
  double log_prob_sum = 0;  // sum over documents of their scores
  int64_t correct = 0;
  double ppl() const;
  double acc() const { return n ? double(correct) / double(n) : 0; }
};

// A document whose score is not finite (NaN or -inf log probabilities: a model with NaN or Inf
// in its weights): score_lambada stops there; the caller names the files.
struct NonFiniteScore : std::runtime_error {
  NonFiniteScore(int64_t line, double score)
      : std::runtime_error("a score that is not finite"), line(line), score(score) {}
  int64_t line;  // 1-based line in the input
  double score;
};

// Scores every document. Documents of similar length are batched (sorted by length, padded on
// the right, which a causal model cannot see), at most `batch_tokens` tokens a batch. A document
// longer than that runs alone in windows of `batch_tokens` tokens that carry the RNN state
// (forward_with_state's numbers, the head only where a target is predicted), so memory stays
// bounded whatever its length. `progress(done, total)` is called after each batch or long
// document. With `start` (a state of batch 1 on the model's device, e.g. a tuned state) every
// document starts from it instead of 0, run in RNN mode. Throws NonFiniteScore.
LambadaScore score_lambada(RWKV& model, const std::vector<LambadaDocument>& docs, at::Device device,
                           int64_t batch_tokens, const std::function<void(int64_t, int64_t)>& progress = {},
                           const ModelState* start = nullptr);

}  // namespace rwkv7
