// cross_entropy_l2wrap on the CPU, the reference for its CUDA kernels: the seed's loss and its
// L2Wrap gradient in one op, with logits [M, V] and targets [M] (int64):
//
//   loss = (1/M) sum_m ( logsumexp(logits[m]) - logits[m, t_m] )
//
// Backward, with dloss (any value: the seed's L2Wrap returned its gradient unscaled, which is
// right only for dloss = 1, as in the training loop; here it is scaled like the rest):
//   dlogits[m, v] = dloss / M * ( softmax(logits[m])_v - [v = t_m] + 1e-4 max_v' logits[m, v'] [v = argmax_m] )
// argmax is the first maximal index. Computed in float32 at least (bf16 logits are widened).
//
// float32 and bfloat16 run the one-pass loops of cross_entropy_l2wrap_cpu_loops.inc instead
// (ops/cpu_kernels/fused_cpu.h); float64 runs the composite, the reference.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <limits>

#include "../cpu_kernels/fused_cpu.h"

#include "cross_entropy_l2wrap_check.h"

namespace rwkv7_ops {
namespace {

at::Tensor widened(const at::Tensor& logits) {
  return logits.scalar_type() == at::kBFloat16 || logits.scalar_type() == at::kHalf ? logits.to(at::kFloat) : logits;
}

// Every target a class of the vocabulary (no ignore_index: the trainer never masks a token)
void check_targets(const char* op, const at::Tensor& targets, int64_t V) {
  const at::Tensor t = targets.contiguous();
  const int64_t* target = t.const_data_ptr<int64_t>();
  for (int64_t m = 0; m < t.numel(); ++m)
    TORCH_CHECK(target[m] >= 0 && target[m] < V, op, ": targets[", m, "] = ", target[m], " is not a class of V = ", V);
}

fused_cpu::CrossEntropy problem(const at::Tensor& logits, const at::Tensor& targets) {
  fused_cpu::CrossEntropy p;
  p.rows = logits.size(0), p.V = logits.size(1), p.bf16 = logits.scalar_type() == at::kBFloat16;
  p.logits = fused_cpu::in(logits), p.targets = targets.const_data_ptr<int64_t>();
  return p;
}

at::Tensor cross_entropy_l2wrap_fast(const at::Tensor& logits, const at::Tensor& targets) {
  fused_cpu::CrossEntropy p = problem(logits, targets);
  std::vector<double> row_loss(static_cast<size_t>(p.rows));
  p.row_loss = row_loss.data();
  fused_cpu::run_blocks(fused_cpu::kernels().cross_entropy, p, p.rows, fused_cpu::kCrossEntropyScratchRows * p.V);
  double sum = 0;
  for (double loss : row_loss) sum += loss;  // (in row order: the same on any number of threads)
  const double mean = sum / static_cast<double>(p.rows);
  // (a finite mean beyond float's range is inf in float, as float32's own cross entropy gives)
  const float inf = std::numeric_limits<float>::infinity();
  const bool beyond_float = std::isfinite(mean) && std::fabs(mean) > std::numeric_limits<float>::max();
  const float loss = beyond_float ? (mean > 0 ? inf : -inf) : static_cast<float>(mean);
  return at::scalar_tensor(loss, logits.options().dtype(at::kFloat));
}

at::Tensor cross_entropy_l2wrap_backward_fast(const at::Tensor& logits, const at::Tensor& targets,
                                              const at::Tensor& dloss) {
  fused_cpu::CrossEntropy p = problem(logits, targets);
  at::Tensor dlogits = at::empty_like(logits);
  p.scale = static_cast<float>(dloss.item<double>() / static_cast<double>(p.rows));
  p.dlogits = fused_cpu::out(dlogits);
  fused_cpu::run_blocks(fused_cpu::kernels().cross_entropy_backward, p, p.rows,
                        fused_cpu::kCrossEntropyScratchRows * p.V);
  return dlogits;
}

at::Tensor cross_entropy_l2wrap_cpu(const at::Tensor& logits, const at::Tensor& targets) {
  check_cross_entropy_l2wrap("rwkv7::cross_entropy_l2wrap", logits, targets);
  check_targets("rwkv7::cross_entropy_l2wrap", targets, logits.size(1));
  if (fused_cpu::runs_fast(logits)) return cross_entropy_l2wrap_fast(logits.contiguous(), targets.contiguous());
  return at::cross_entropy_loss(widened(logits), targets);
}

at::Tensor cross_entropy_l2wrap_backward_cpu(const at::Tensor& logits, const at::Tensor& targets,
                                             const at::Tensor& dloss) {
  check_cross_entropy_l2wrap("rwkv7::cross_entropy_l2wrap_backward", logits, targets);
  check_cross_entropy_l2wrap_dloss("rwkv7::cross_entropy_l2wrap_backward", dloss);
  check_targets("rwkv7::cross_entropy_l2wrap_backward", targets, logits.size(1));
  if (fused_cpu::runs_fast(logits))
    return cross_entropy_l2wrap_backward_fast(logits.contiguous(), targets.contiguous(), dloss);
  const at::Tensor x = widened(logits);
  const int64_t M = x.size(0);
  at::Tensor g = at::softmax(x, -1);
  g.scatter_add_(1, targets.unsqueeze(1), at::full({M, 1}, -1.0, g.options()));
  auto [maxx, ids] = at::max(x, -1, /*keepdim=*/true);  // (first maximal index on the CPU)
  g.scatter_add_(1, ids, maxx * 1e-4);
  return (g * (dloss.to(x.scalar_type()) / double(M))).to(logits.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CPU, m) {
  m.impl("cross_entropy_l2wrap", &cross_entropy_l2wrap_cpu);
  m.impl("cross_entropy_l2wrap_backward", &cross_entropy_l2wrap_backward_cpu);
}

}  // namespace rwkv7_ops
