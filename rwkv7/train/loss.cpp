#include "rwkv7/train/loss.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "rwkv7/model/fused_ops.h"

namespace rwkv7 {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Identity on the loss; in backward also returns the L2Wrap gradient for the logits.
class L2Wrap : public torch::autograd::Function<L2Wrap> {
 public:
  // positions: the B*T the term is divided by (the logits' own, or a whole batch's when the
  // logits are one chunk of it)
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& loss, const at::Tensor& logits,
                            int64_t positions) {
    ctx->save_for_backward({logits});
    ctx->saved_data["positions"] = positions;
    return loss;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const at::Tensor y = ctx->get_saved_variables()[0];
    const double factor = 1e-4 / static_cast<double>(ctx->saved_data["positions"].toInt());
    auto [maxx, ids] = at::max(y, -1, /*keepdim=*/true);
    at::Tensor gy = at::zeros_like(y).scatter_(-1, ids, maxx * factor);
    return {grad[0], gy * grad[0].to(gy.scalar_type()), at::Tensor()};
  }
};

class ChunkedHeadLoss : public torch::autograd::Function<ChunkedHeadLoss> {
 public:
  // hidden [M, C], weight [V, C], targets [M]
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden, const at::Tensor& weight,
                            const at::Tensor& targets, int64_t chunk) {
    const int64_t M = hidden.size(0);
    // sums in float32 at least (float64 stays float64)
    const at::ScalarType acc = hidden.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    at::Tensor loss_sum = at::zeros({}, hidden.options().dtype(acc));
    at::Tensor dhidden = at::empty_like(hidden);
    at::Tensor dweight = at::zeros(weight.sizes(), weight.options().dtype(acc));
    for (int64_t i = 0; i < M; i += chunk) {
      const int64_t j = std::min(M, i + chunk);
      const at::Tensor h = hidden.slice(0, i, j), t = targets.slice(0, i, j);
      const at::Tensor logits = at::matmul(h, weight.t());
      // the op's loss is the chunk's mean; the whole loss is the mean over M
      loss_sum += fused::cross_entropy_l2wrap(logits, t).to(acc) * double(j - i);
      const at::Tensor dlogits =
          fused::cross_entropy_l2wrap_backward(logits, t, at::full({}, double(j - i) / double(M), loss_sum.options()));
      dhidden.slice(0, i, j).copy_(at::matmul(dlogits, weight));
      dweight += at::matmul(dlogits.t(), h).to(acc);
    }
    ctx->save_for_backward({dhidden, dweight.to(weight.scalar_type())});
    return loss_sum / double(M);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor g = grad[0];
    return {saved[0] * g.to(saved[0].scalar_type()), saved[1] * g.to(saved[1].scalar_type()), at::Tensor(),
            at::Tensor()};
  }
};

}  // namespace

at::Tensor cross_entropy_l2wrap(const at::Tensor& logits, const at::Tensor& targets, bool fused) {
  const int64_t V = logits.size(-1);
  if (fused) return fused::cross_entropy_l2wrap(logits.reshape({-1, V}), targets.reshape({-1}));
  at::Tensor loss = at::cross_entropy_loss(logits.reshape({-1, V}), targets.reshape({-1}));
  return L2Wrap::apply(loss, logits, logits.numel() / V);
}

at::Tensor cross_entropy_l2wrap_part(const at::Tensor& logits, const at::Tensor& targets, int64_t targets_in_batch,
                                     int64_t positions_in_batch) {
  const int64_t V = logits.size(-1);
  const at::Tensor sum = at::cross_entropy_loss(logits.reshape({-1, V}), targets.reshape({-1}), {}, at::Reduction::Sum);
  return L2Wrap::apply(sum / static_cast<double>(targets_in_batch), logits, positions_in_batch);
}

at::Tensor chunked_head_loss(const at::Tensor& hidden, const at::Tensor& head_weight, const at::Tensor& targets,
                             int64_t chunk) {
  TORCH_CHECK(chunk > 0, "chunked_head_loss: chunk must be > 0");
  const int64_t C = hidden.size(-1);
  return ChunkedHeadLoss::apply(hidden.reshape({-1, C}), head_weight, targets.reshape({-1}), chunk);
}

}  // namespace rwkv7
