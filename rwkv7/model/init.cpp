#include "rwkv7/model/init.h"

#include <ATen/ATen.h>
#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/init.h>

#include <cmath>
#include <vector>

namespace rwkv7 {

namespace {

// The per-channel profiles, computed in float32 exactly as the seed's tensors are.
// ddd[i] = i / C;  lin[n] = n / (C-1) - 0.5;  z = ((n mod N) - (N-1)/2) / ((N-1)/2), zig = z |z|
struct Profiles {
  std::vector<float> ddd, lin, zig;
  Profiles(int64_t C, int64_t N) : ddd(C), lin(C), zig(C) {
    for (int64_t n = 0; n < C; ++n) {
      ddd[n] = static_cast<float>(static_cast<double>(n) / C);
      lin[n] = static_cast<float>(static_cast<double>(n) / (C - 1) - 0.5);
      const float z = static_cast<float>(((n % N) - (N - 1) / 2.0) / ((N - 1) / 2.0));
      zig[n] = z * std::fabs(z);
    }
  }
};

template <typename F>
void fill(at::Tensor& p, int64_t C, F value_of) {
  at::Tensor cpu = at::empty({C}, at::kFloat);
  float* d = cpu.data_ptr<float>();
  for (int64_t n = 0; n < C; ++n) d[n] = value_of(n);
  p.copy_(cpu.view(p.sizes()));
}

// 1 - ddd^e, the token-shift mix profile
void shift_profile(at::Tensor& p, const Profiles& pr, double exponent) {
  const float e = static_cast<float>(exponent);
  fill(p, p.numel(), [&](int64_t n) { return 1.0f - std::pow(pr.ddd[n], e); });
}

// The seed's ortho_init for the LoRA up-projections: gain sqrt(rows/cols) if rows > cols.
void lora_orthogonal(at::Tensor& p, double scale) {
  const double rows = p.size(0), cols = p.size(1);
  const double gain = rows > cols ? std::sqrt(rows / cols) : 1.0;
  torch::nn::init::orthogonal_(p, gain * scale);
}

void init_time_mix(TimeMixImpl& att, const ModelShape& s, const Profiles& pr) {
  const int64_t C = s.n_embd, L = s.n_layer, l = att.layer_id;
  const double r01 = L > 1 ? static_cast<double>(l) / (L - 1) : 0.0;  // 0 -> 1 over depth
  const double r10 = 1.0 - static_cast<double>(l) / L;                // 1 -> ~0 over depth
  shift_profile(att.x_r, pr, 0.2 * r10);
  shift_profile(att.x_w, pr, 0.9 * r10);
  shift_profile(att.x_k, pr, 0.7 * r10);
  shift_profile(att.x_v, pr, 0.7 * r10);
  shift_profile(att.x_a, pr, 0.9 * r10);
  shift_profile(att.x_g, pr, 0.2 * r10);
  // w0 = -6 + 6 (n/(C-1))^(1 + r01^0.3) + 0.5 + 2.5 zig   (0.5 undoes the softplus offset)
  const double w_exp = 1.0 + std::pow(r01, 0.3);
  fill(att.w0, C, [&](int64_t n) {
    const float www = static_cast<float>(-6.0 + 6.0 * std::pow(static_cast<double>(n) / (C - 1), w_exp));
    return (www + 0.5f) + pr.zig[n] * 2.5f;
  });
  fill(att.a0, C, [&](int64_t n) { return (-0.19f + pr.zig[n] * 0.3f) + pr.lin[n] * 0.4f; });
  if (att.has_value_residual) fill(att.v0, C, [&](int64_t n) { return 0.73f - pr.lin[n] * 0.4f; });
  fill(att.k_k, C, [&](int64_t n) { return 0.71f - pr.lin[n] * 0.1f; });
  att.k_a.fill_(1.02);
  att.r_k.fill_(-0.04);
  // LoRAs: down-projections zero, up-projections orthogonal x 0.1
  att.w1.zero_(); att.a1.zero_(); att.g1.zero_();
  lora_orthogonal(att.w2, 0.1);
  lora_orthogonal(att.a2, 0.1);
  if (att.has_value_residual) {
    att.v1.zero_();
    lora_orthogonal(att.v2, 0.1);
  }
  lora_orthogonal(att.g2, 0.1);
  // generate_init_weight: Linear weights orthogonal with gain 1, key 0.1, output 0
  torch::nn::init::orthogonal_(att.receptance->weight, 1.0);
  torch::nn::init::orthogonal_(att.key->weight, 0.1);
  torch::nn::init::orthogonal_(att.value->weight, 1.0);
  att.output->weight.zero_();
  // ln_x weight ((1 + l) / L)^0.7, bias 0
  att.ln_x->weight.fill_(std::pow(static_cast<double>(1 + l) / L, 0.7));
  att.ln_x->bias.zero_();
}

void init_channel_mix(ChannelMixImpl& ffn, const ModelShape& s, const Profiles& pr) {
  const double r10 = 1.0 - static_cast<double>(ffn.layer_id) / s.n_layer;
  shift_profile(ffn.x_k, pr, std::pow(r10, 4));
  torch::nn::init::orthogonal_(ffn.key->weight, 1.0);
  ffn.value->weight.zero_();
}

void init_layer_norm(LayerNorm& ln) {
  ln->weight.fill_(1.0);
  ln->bias.zero_();
}

}  // namespace

void init_seed_weights(RWKV& model, uint64_t seed) {
  at::NoGradGuard no_grad;
  {
    // orthogonal_ and uniform_ draw from the default CPU generator
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  const ModelShape& s = model->shape;
  const Profiles pr(s.n_embd, s.head_size);
  model->emb->weight.uniform_(-1e-4, 1e-4);
  for (auto& block : model->block_list) {
    init_layer_norm(block->ln1);
    init_layer_norm(block->ln2);
    if (block->ln0) init_layer_norm(block->ln0);
    init_time_mix(*block->att, s, pr);
    init_channel_mix(*block->ffn, s, pr);
  }
  init_layer_norm(model->ln_out);
  const double V = s.vocab_size, C = s.n_embd;
  torch::nn::init::orthogonal_(model->head->weight, V > C ? 0.5 * std::sqrt(V / C) : 0.5);
}

}  // namespace rwkv7
