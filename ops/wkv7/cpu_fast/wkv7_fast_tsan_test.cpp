// The fast WKV-7 CPU kernel's per-thread loops under ThreadSanitizer: the (batch, head) pairs
// split over three std::threads, each with its own workspace (what at::parallel_for does, which
// TSan cannot see into), for every instruction set this processor runs. Any shared write is a
// reported race (halt_on_error: the test fails), and the result must equal one thread's bit for bit.
// Plain C++ without LibTorch, so that everything that runs is instrumented.
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "../../cpu_kernels/cpu_features.h"
#include "wkv7_fast.h"

using namespace rwkv7_ops::wkv7_fast;

namespace {

using Range = void (*)(const Problem&, int64_t, int64_t, float*);

struct Run {
  std::vector<float> y, saved, grads[6], ds0;
};

Run run(Problem p, Range forward, Range backward, int threads) {
  const int64_t n = p.B * p.T * p.H * p.N, pairs = p.B * p.H;
  Run out;
  out.y.resize(n);
  out.saved.resize(pairs * p.chunks() * p.N * p.N);
  out.ds0.resize(pairs * p.N * p.N);
  for (auto& g : out.grads) g.resize(n);
  p.y = out.y.data(), p.saved = out.saved.data(), p.ds0 = out.ds0.data();
  p.dr = out.grads[0].data(), p.dw = out.grads[1].data(), p.dk = out.grads[2].data();
  p.dv = out.grads[3].data(), p.da = out.grads[4].data(), p.db = out.grads[5].data();
  for (Range range : {forward, backward}) {
    std::vector<std::thread> pool;
    std::vector<std::vector<float>> workspace(threads, std::vector<float>(workspace_floats(p.N)));
    for (int t = 0; t < threads; ++t)
      pool.emplace_back(range, std::cref(p), pairs * t / threads, pairs * (t + 1) / threads, workspace[t].data());
    for (auto& th : pool) th.join();
  }
  return out;
}

bool same(const Run& a, const Run& b) {
  auto eq = [](const std::vector<float>& x, const std::vector<float>& y) {
    return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
  };
  bool ok = eq(a.y, b.y) && eq(a.ds0, b.ds0);
  for (int i = 0; i < 6; ++i) ok = ok && eq(a.grads[i], b.grads[i]);
  return ok;
}

}  // namespace

int main() {
  struct Isa { const char* name; Range forward, backward; bool here; };
  const Isa isas[] = {{"baseline", &baseline::forward, &baseline::backward, true},
                      {"avx2", &avx2::forward, &avx2::backward, rwkv7_ops::cpu_has_avx2_fma()},
                      {"avx512", &avx512::forward, &avx512::backward, rwkv7_ops::cpu_has_avx512()}};
  Problem p;
  p.B = 1, p.T = 35, p.H = 7, p.N = 64;  // 7 pairs over 3 threads; T crosses two chunk starts
  const int64_t n = p.B * p.T * p.H * p.N;
  std::mt19937 gen(5);
  std::normal_distribution<float> normal;
  std::vector<float> in[7], s0(p.H * p.N * p.N);
  for (auto& x : in) {
    x.resize(n);
    for (auto& e : x) e = 0.3f * normal(gen);
  }
  for (auto& e : in[1]) e = -0.6f - 0.1f * e * e;  // w <= -0.5
  for (auto& e : s0) e = 0.1f * normal(gen);
  p.r = in[0].data(), p.w = in[1].data(), p.k = in[2].data(), p.v = in[3].data(), p.a = in[4].data();
  p.b = in[5].data(), p.dy = in[6].data(), p.s0 = s0.data();
  int failed = 0, ran = 0;
  for (const Isa& isa : isas) {
    if (!isa.here) continue;
    const bool ok = same(run(p, isa.forward, isa.backward, 1), run(p, isa.forward, isa.backward, 3));
    std::printf("%s: 3 threads %s 1 thread\n", isa.name, ok ? "==" : "!=");
    failed += !ok;
    ++ran;
  }
  std::printf("%d passed, %d failed\n", ran - failed, failed);
  return failed == 0 ? 0 : 1;
}
