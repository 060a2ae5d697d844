// The fused ops' CPU loops under ThreadSanitizer: each op's blocks split over three std::threads,
// each with its own scratch memory (what at::parallel_for does, which TSan cannot see into), for
// every instruction set this processor runs, float32 and bf16. Any shared write is a reported race
// (halt_on_error: the test fails), and every output must equal one thread's bit for bit.
// Plain C++ without LibTorch, so that everything that runs is instrumented.
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "cpu_features.h"
#include "fused_cpu_kernels.h"

using namespace rwkv7_ops::fused_cpu;

namespace {

// Every buffer of one run: inputs drawn from a fixed seed, outputs zeroed; float32 or bf16
// elements (bf16 as the top half of a float: the loops only read the bits).
class Data {
 public:
  explicit Data(bool bf16) : bf16_(bf16) {}
  const void* input(int64_t n) { return make(n, true); }
  void* output(int64_t n) { return make(n, false); }
  float* partial(int64_t n) { return static_cast<float*>(keep(std::vector<unsigned char>(n * 4), true)); }
  std::vector<std::vector<unsigned char>> results() const {
    std::vector<std::vector<unsigned char>> r;
    for (size_t i : output_index_) r.push_back(store_[i]);
    return r;
  }

 private:
  void* make(int64_t n, bool random) {
    std::vector<unsigned char> bytes(n * (bf16_ ? 2 : 4));
    for (int64_t i = 0; random && i < n; ++i) {
      const float x = normal_(gen_);
      if (bf16_) std::memcpy(&bytes[2 * i], reinterpret_cast<const char*>(&x) + 2, 2);
      else std::memcpy(&bytes[4 * i], &x, 4);
    }
    return keep(std::move(bytes), !random);
  }
  void* keep(std::vector<unsigned char> bytes, bool is_output) {
    store_.push_back(std::move(bytes));
    if (is_output) output_index_.push_back(store_.size() - 1);
    return store_.back().data();
  }

  bool bf16_;
  std::mt19937 gen_{11};
  std::normal_distribution<float> normal_;
  std::vector<std::vector<unsigned char>> store_;  // (never reallocates what it handed out: vectors move)
  std::vector<size_t> output_index_;
};

template <typename P>
void run(BlockKernel<P> kernel, const P& p, int64_t blocks, int64_t scratch_floats, int threads) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<float> scratch(scratch_floats);
      for (int64_t b = blocks * t / threads; b < blocks * (t + 1) / threads; ++b) kernel(p, b, scratch.data());
    });
  for (auto& th : pool) th.join();
}

constexpr int64_t B = 3, T = 23, C = 48, H = 3, rows = B * T, blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;

// every op forward and backward with `threads` threads: the outputs' bytes
std::vector<std::vector<unsigned char>> all_ops(const Kernels& k, bool bf16, int threads) {
  Data d(bf16);
  TokenShiftMix tsm;
  tsm.B = B, tsm.T = T, tsm.C = C, tsm.n = 6, tsm.bf16 = bf16;
  tsm.x = d.input(rows * C), tsm.mix = d.input(6 * C), tsm.dout = d.input(6 * rows * C);
  tsm.out = d.output(6 * rows * C), tsm.dx = d.output(rows * C), tsm.partial = d.partial(blocks * 6 * C);
  run(k.token_shift_mix, tsm, blocks, kRowScratchRows * C, threads);
  run(k.token_shift_mix_backward, tsm, blocks, kRowScratchRows * C, threads);

  ReluSquare relu;
  relu.numel = 3 * kElementsPerBlock + 77, relu.bf16 = bf16;
  relu.x = d.input(relu.numel), relu.dout = d.input(relu.numel), relu.out = d.output(relu.numel);
  relu.dx = d.output(relu.numel);
  const int64_t relu_blocks = (relu.numel + kElementsPerBlock - 1) / kElementsPerBlock;
  run(k.relu_square, relu, relu_blocks, kReluScratchRows * kElementsPerBlock, threads);
  run(k.relu_square_backward, relu, relu_blocks, kReluScratchRows * kElementsPerBlock, threads);

  VresGate vg;
  vg.rows = rows, vg.C = C, vg.bf16 = bf16;
  vg.v = d.input(rows * C), vg.v_first = d.input(rows * C), vg.v_in = d.input(rows * C), vg.v0 = d.input(C);
  vg.dout = d.input(rows * C), vg.out = d.output(rows * C), vg.dv = d.output(rows * C);
  vg.dv_first = d.output(rows * C), vg.dv_in = d.output(rows * C), vg.partial = d.partial(blocks * C);
  run(k.vres_gate, vg, blocks, kRowScratchRows * C, threads);
  run(k.vres_gate_backward, vg, blocks, kRowScratchRows * C, threads);

  KkPre kk;
  kk.rows = rows, kk.C = C, kk.H = H, kk.bf16 = bf16;
  kk.k = d.input(rows * C), kk.a_in = d.input(rows * C), kk.a0 = d.input(C), kk.k_k = d.input(C);
  kk.k_a = d.input(C), kk.dk_out = d.input(rows * C), kk.dneg_kk = d.input(rows * C), kk.dkk_a = d.input(rows * C);
  kk.k_out = d.output(rows * C), kk.neg_kk = d.output(rows * C), kk.kk_a = d.output(rows * C);
  kk.dk = d.output(rows * C), kk.da_in = d.output(rows * C), kk.partial = d.partial(blocks * 3 * C);
  run(k.kk_pre, kk, blocks, kRowScratchRows * C, threads);
  run(k.kk_pre_backward, kk, blocks, kRowScratchRows * C, threads);

  LnxRkvresXg ln;
  ln.rows = rows, ln.C = C, ln.H = H, ln.eps = 64e-5f, ln.bf16 = bf16;
  ln.y = d.input(rows * C), ln.r = d.input(rows * C), ln.k = d.input(rows * C), ln.v = d.input(rows * C);
  ln.r_k = d.input(C), ln.g = d.input(rows * C), ln.ln_w = d.input(C), ln.ln_b = d.input(C);
  ln.dout = d.input(rows * C), ln.out = d.output(rows * C), ln.dy = d.output(rows * C), ln.dr = d.output(rows * C);
  ln.dk = d.output(rows * C), ln.dv = d.output(rows * C), ln.dg = d.output(rows * C);
  ln.partial = d.partial(blocks * 3 * C);
  run(k.lnx_rkvres_xg, ln, blocks, kRowScratchRows * C, threads);
  run(k.lnx_rkvres_xg_backward, ln, blocks, kRowScratchRows * C, threads);

  CrossEntropy ce;
  const int64_t V = 131;
  std::vector<int64_t> targets(rows);
  for (int64_t m = 0; m < rows; ++m) targets[m] = (m * 37) % V;
  std::vector<double> loss(rows);
  ce.rows = rows, ce.V = V, ce.bf16 = bf16, ce.logits = d.input(rows * V), ce.targets = targets.data();
  ce.row_loss = loss.data(), ce.scale = 1.0f / rows, ce.dlogits = d.output(rows * V);
  run(k.cross_entropy, ce, rows, kCrossEntropyScratchRows * V, threads);
  run(k.cross_entropy_backward, ce, rows, kCrossEntropyScratchRows * V, threads);

  std::vector<std::vector<unsigned char>> out = d.results();
  out.emplace_back(reinterpret_cast<unsigned char*>(loss.data()), reinterpret_cast<unsigned char*>(loss.data() + rows));
  return out;
}

}  // namespace

int main() {
  struct Isa { const char* name; const Kernels* kernels; bool here; };
  const Isa isas[] = {{"baseline", &baseline::kernels, true},
                      {"avx2", &avx2::kernels, rwkv7_ops::cpu_has_avx2_fma()},
                      {"avx512", &avx512::kernels, rwkv7_ops::cpu_has_avx512()}};
  int failed = 0, ran = 0;
  for (const Isa& isa : isas) {
    if (!isa.here) continue;
    for (const bool bf16 : {false, true}) {
      const auto one = all_ops(*isa.kernels, bf16, 1), three = all_ops(*isa.kernels, bf16, 3);
      for (size_t i = 0; i < one.size(); ++i)
        if (one[i] != three[i]) {
          std::printf("%s %s: output %zu differs between 1 and 3 threads\n", isa.name, bf16 ? "bf16" : "fp32", i);
          ++failed;
        }
      ++ran;
    }
  }
  std::printf("fused CPU loops: %d instruction set x dtype runs under 3 threads, %d differences\n", ran, failed);
  return failed == 0 && ran >= 2 ? 0 : 1;
}
