// cross_entropy_l2wrap on the CPU, the reference for its CUDA kernels: the seed's loss and its
// L2Wrap gradient in one op, with logits [M, V] and targets [M] (int64):
//
//   loss = (1/M) sum_m ( logsumexp(logits[m]) - logits[m, t_m] )
//
// Backward, with dloss (any value: the seed's L2Wrap returned its gradient unscaled, which is
// right only for dloss = 1, as in the training loop; here it is scaled like the rest):
//   dlogits[m, v] = dloss / M * ( softmax(logits[m])_v - [v = t_m] + 1e-4 max_v' logits[m, v'] [v = argmax_m] )
// argmax is the first maximal index. Computed in float32 at least (bf16 logits are widened).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "cross_entropy_l2wrap_check.h"

namespace rwkv7_ops {
namespace {

at::Tensor widened(const at::Tensor& logits) {
  return logits.scalar_type() == at::kBFloat16 || logits.scalar_type() == at::kHalf ? logits.to(at::kFloat) : logits;
}

at::Tensor cross_entropy_l2wrap_cpu(const at::Tensor& logits, const at::Tensor& targets) {
  check_cross_entropy_l2wrap("rwkv7::cross_entropy_l2wrap", logits, targets);
  return at::cross_entropy_loss(widened(logits), targets);
}

at::Tensor cross_entropy_l2wrap_backward_cpu(const at::Tensor& logits, const at::Tensor& targets,
                                             const at::Tensor& dloss) {
  check_cross_entropy_l2wrap("rwkv7::cross_entropy_l2wrap_backward", logits, targets);
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
