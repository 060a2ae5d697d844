#include "rwkv7/eval/lambada.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "rwkv7/data/jsonl.h"
#include "rwkv7/io/fs.h"

namespace rwkv7 {

namespace {

// Python's text.rsplit(' ', 1) into context and target; "" when the line cannot be scored.
std::string split_document(const std::string& text, const Tokenizer& tok, LambadaDocument* doc) {
  const size_t space = text.rfind(' ');
  if (space == std::string::npos) return "the text has no space to split off its last word";
  if (space + 1 == text.size()) return "the text's last word is empty (it ends in a space)";
  doc->context = {0};
  for (int64_t id : tok.encode(std::string_view(text).substr(0, space))) doc->context.push_back(id);
  doc->target = tok.encode(std::string_view(text).substr(space));
  if (doc->target.empty()) return "the last word encodes to no tokens";
  return "";
}

}  // namespace

double LambadaScore::ppl() const { return n ? std::exp(-log_prob_sum / double(n)) : NAN; }

std::vector<LambadaDocument> read_lambada(const std::string& path, const Tokenizer& tok, bool skip_bad_lines,
                                          int64_t limit, int64_t* skipped) {
  if (fs::is_directory(path)) throw std::runtime_error(path + ": is a directory, not a jsonl file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::vector<LambadaDocument> docs;
  std::string line, text;
  *skipped = 0;
  for (int64_t n = 1; std::getline(in, line) && (limit <= 0 || int64_t(docs.size()) < limit); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    LambadaDocument doc;
    doc.line = n;
    std::string why = parse_text_line(line, &text);
    if (why.empty()) why = split_document(text, tok, &doc);
    if (why.empty()) {
      docs.push_back(std::move(doc));
      continue;
    }
    if (!skip_bad_lines) throw std::runtime_error(fmt::format("{}:{}: {} (--skip-bad-lines leaves such lines out)", path, n, why));
    std::fprintf(stderr, "%s:%lld: %s (skipped)\n", path.c_str(), static_cast<long long>(n), why.c_str());
    ++*skipped;
  }
  if (in.bad()) throw std::runtime_error(path + ": read error");
  return docs;
}

namespace {

// A copy of a state with batch 1 repeated `rows` times (every row carried on by itself).
ModelState repeated(const ModelState& start, int64_t rows) {
  auto repeat = [&](const at::Tensor& t) {
    std::vector<int64_t> sizes = t.sizes().vec();
    sizes[0] = rows;
    return t.expand(sizes).clone(at::MemoryFormat::Contiguous);
  };
  ModelState state;
  for (const LayerState& l : start) state.push_back({repeat(l.att_x_prev), repeat(l.wkv), repeat(l.ffn_x_prev)});
  return state;
}

// One document longer than `window` input tokens, alone, in windows of `window` tokens that carry
// the RNN state: memory is bounded by the window whatever the document's length, and the numbers
// are those of one pass (forward_with_state's promise). Returns {score, all targets argmax}.
std::pair<double, bool> score_in_windows(RWKV& model, const LambadaDocument& d, at::Device device, int64_t window,
                                         const ModelState* start) {
  std::vector<int64_t> input(d.context);  // context + target, all but the last token
  input.insert(input.end(), d.target.begin(), d.target.end() - 1);
  ModelState state = start ? repeated(*start, 1) : zero_state(model, 1);
  const int64_t T = int64_t(input.size()), first_pred = int64_t(d.context.size()) - 1;
  double sum = 0;
  bool all_best = true;
  for (int64_t off = 0; off < T; off += window) {
    const int64_t n = std::min(window, T - off);
    const at::Tensor idx = at::from_blob(input.data() + off, {1, n}, at::kLong).to(device);
    const at::Tensor h = model->hidden(idx, state)[0];  // [n, C]
    const int64_t from = std::max(first_pred, off);  // positions here that predict a target token
    if (from >= off + n) continue;
    const at::Tensor logp =
        at::log_softmax(model->head(h.slice(0, from - off)).to(at::kFloat), -1).cpu().contiguous();  // [m, V]
    const at::Tensor best = logp.argmax(-1);
    const auto lp = logp.accessor<float, 2>();
    const auto top = best.accessor<int64_t, 1>();
    for (int64_t pos = from; pos < off + n; ++pos) {
      const int64_t want = d.target[size_t(pos - first_pred)];
      sum += lp[pos - from][want];
      all_best = all_best && top[pos - from] == want;
    }
  }
  return {sum, all_best};
}

}  // namespace

LambadaScore score_lambada(RWKV& model, const std::vector<LambadaDocument>& docs, at::Device device,
                           int64_t batch_tokens, const std::function<void(int64_t, int64_t)>& progress,
                           const ModelState* start) {
  at::NoGradGuard no_grad;
  std::vector<size_t> order(docs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto length = [&](size_t i) { return int64_t(docs[i].context.size() + docs[i].target.size()); };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return length(a) < length(b); });

  LambadaScore score;
  auto add = [&](const LambadaDocument& d, double sum, bool all_best) {
    if (!std::isfinite(sum)) throw NonFiniteScore(d.line, sum);
    score.log_prob_sum += sum;
    score.correct += all_best;
    ++score.n;
  };
  // (on CUDA the WKV kernel needs T % 16 == 0: pad to that too; padding is on the right)
  auto padded = [&](int64_t tokens) { return device.is_cuda() ? (tokens + 15) / 16 * 16 : tokens; };
  for (size_t first = 0; first < order.size();) {
    // a document longer than the budget: alone, in windows that carry the state (sorted: the
    // documents after it are as long)
    if (padded(length(order[first]) - 1) > batch_tokens) {
      const LambadaDocument& d = docs[order[first]];
      const auto [sum, all_best] = score_in_windows(model, d, device, batch_tokens, start);
      add(d, sum, all_best);
      ++first;
      if (progress) progress(int64_t(first), int64_t(order.size()));
      continue;
    }
    // the batch: as many documents as fit `batch_tokens` at the longest one's length (sorted)
    size_t last = first + 1;
    while (last < order.size() && int64_t(last - first + 1) * padded(length(order[last]) - 1) <= batch_tokens) ++last;
    const int64_t T = padded(length(order[last - 1]) - 1);  // inputs: all but the last token
    at::Tensor idx = at::zeros({int64_t(last - first), T}, at::kLong);  // right padding: 0
    for (size_t b = first; b < last; ++b) {
      const LambadaDocument& d = docs[order[b]];
      int64_t* row = idx[int64_t(b - first)].data_ptr<int64_t>();
      std::copy(d.context.begin(), d.context.end(), row);
      std::copy(d.target.begin(), d.target.end() - 1, row + d.context.size());
    }
    // every row from `start` when given: its batch-1 state repeated, a copy per row (carried on)
    at::Tensor logits;
    if (start) {
      ModelState state = repeated(*start, idx.size(0));
      logits = forward_with_state(model, idx.to(device), state);
    } else {
      logits = model->forward(idx.to(device));
    }
    // log softmax in fp32, and argmax, at every position
    const at::Tensor logp = at::log_softmax(logits.to(at::kFloat), -1).cpu().contiguous();
    const at::Tensor best = logp.argmax(-1);
    const auto lp = logp.accessor<float, 3>();
    const auto top = best.accessor<int64_t, 2>();
    for (size_t b = first; b < last; ++b) {
      const LambadaDocument& d = docs[order[b]];
      const int64_t row = int64_t(b - first);
      double sum = 0;
      bool all_best = true;
      for (size_t j = 0; j < d.target.size(); ++j) {
        const int64_t pos = int64_t(d.context.size() + j) - 1;  // the position that predicts target[j]
        sum += lp[row][pos][d.target[j]];
        all_best = all_best && top[row][pos] == d.target[j];
      }
      add(d, sum, all_best);
    }
    first = last;
    if (progress) progress(int64_t(first), int64_t(order.size()));
  }
  return score;
}

}  // namespace rwkv7
