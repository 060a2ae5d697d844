// WKV-7 on the CPU: the recurrence as plain loops, one (batch, head) pair per task.
//
// Per batch b and head h, with a state S (N x N; row i = value channel, column j = key
// channel), S_0 = 0 (or the given initial state s0, wkv7_state) and decay d_t = exp(-exp(w_t)):
//
//   sa_t = S_{t-1} a_t                                   (N)
//   S_t  = S_{t-1} diag(d_t) + sa_t b_t^T + v_t k_t^T    (N x N)
//   y_t  = S_t r_t                                       (N)
//
// Backward, with G = dL/dS_t flowing from the future to the past:
//   G      += dy_t r_t^T
//   dr_t    = S_t^T dy_t
//   dv_t    = G k_t,   dk_t = G^T v_t,   db_t = G^T sa_t,   dsa_t = G b_t
//   dd_t[j] = sum_i G[i][j] S_{t-1}[i][j]  ->  dw_t = dd_t * d_t * (-exp(w_t))
//   da_t    = S_{t-1}^T dsa_t
//   G       = G diag(d_t) + dsa_t a_t^T        (now dL/dS_{t-1})
// and after the first step G = dL/dS_0, the initial state's gradient (wkv7_state; summed over
// the batch when one s0 [H, N, N] is shared by every sample).
//
// wkv7_state_passing (long context, one chunk of a sample at a time) also returns the final
// state S_T, and its backward takes dL/dS_T: G starts there instead of at 0.
//
// wkv7_reset (packed documents) restarts the state before every step t with reset[b, t]:
// S_{t-1} is replaced by R (s_reset) in that step's update. In the backward, that step's G
// (now dL/dR, as R is what the step read) is added to dR and G restarts at 0: nothing before
// a restart reaches anything after it.
//
// The forward keeps the state at the start of every chunk of kChunk steps; the backward
// recomputes the states inside one chunk from there. That is exact (no division by the
// decay, unlike the CUDA kernel's reverse-time trick) and costs one extra forward pass.
// These loops are the reference, and run float64 inputs; float32 and bfloat16 inputs run the
// fast kernel of cpu_fast/ (the same math, vectorised per instruction set, bf16 read directly),
// which the tests hold against these loops in float64.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/TensorOperators.h>
#include <ATen/ops/softplus.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "cpu_fast/wkv7_fast.h"
#include "wkv7_check.h"

namespace rwkv7_ops {
namespace {

constexpr int64_t kChunk = 16;

struct Dims {
  int64_t B, T, H, N;
  int64_t chunks() const { return (T + kChunk - 1) / kChunk; }
  // offset of element (b, t, h, 0) in a contiguous [B, T, H, N] tensor
  int64_t at(int64_t b, int64_t t, int64_t h) const { return ((b * T + t) * H + h) * N; }
};

at::ScalarType accumulation_type(const at::Tensor& r, const char* op) {
  switch (r.scalar_type()) {
    case at::kDouble: return at::kDouble;
    case at::kFloat:
    case at::kBFloat16: return at::kFloat;
    default:
      TORCH_CHECK(false, op, ": argument 'r' has dtype ", r.scalar_type(),
                  "; the CPU kernel takes float64, float32 or bfloat16");
  }
}

// One step of the recurrence: S <- S diag(d) + (S a) b^T + v k^T; returns nothing, writes sa.
template <typename acc_t>
void step_state(acc_t* S, const acc_t* decay, const acc_t* k, const acc_t* v, const acc_t* a,
                const acc_t* b, acc_t* sa, int64_t N) {
  for (int64_t i = 0; i < N; ++i) {
    acc_t s = 0;
    for (int64_t j = 0; j < N; ++j) s += S[i * N + j] * a[j];
    sa[i] = s;
  }
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j)
      S[i * N + j] = S[i * N + j] * decay[j] + sa[i] * b[j] + v[i] * k[j];
}

// The initial state, if any: s0 [B or 1, H, N, N] (batch stride 0 when shared).
template <typename acc_t>
struct InitialState {
  const acc_t* s0 = nullptr;  // null: S_0 = 0
  int64_t batch_stride = 0;   // elements between samples' states; 0 = one state for all
  acc_t* ds0 = nullptr;       // null: no gradient wanted; else [B, H, N, N] per sample
  acc_t* sT = nullptr;        // forward: null, or receives the final state S_T [B, H, N, N]
  const acc_t* dsT = nullptr; // backward: null (G starts at 0), or dL/dS_T [B, H, N, N]
  const bool* reset = nullptr;     // null, or [B, T]: restart from s_reset before step t
  const acc_t* s_reset = nullptr;  // [B or 1, H, N, N] (batch stride as s0's)
  int64_t s_reset_batch_stride = 0;
  acc_t* ds_reset = nullptr;       // backward: dL/dR per sample [B, H, N, N]

  bool restarts(int64_t bi, int64_t t, int64_t T) const { return reset != nullptr && reset[bi * T + t]; }
  const acc_t* restart_state(int64_t bi, int64_t h, int64_t N) const {
    return s_reset + bi * s_reset_batch_stride + h * N * N;
  }
};

template <typename acc_t>
void forward_loops(const Dims& d, const acc_t* r, const acc_t* w, const acc_t* k,
                   const acc_t* v, const acc_t* a, const acc_t* b, acc_t* y, acc_t* saved,
                   const InitialState<acc_t>& init) {
  const int64_t N = d.N;
  at::parallel_for(0, d.B * d.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> S(N * N), decay(N), sa(N);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t bi = bh / d.H, h = bh % d.H;
      if (init.s0 != nullptr) {
        const acc_t* s0 = init.s0 + bi * init.batch_stride + h * N * N;
        std::copy(s0, s0 + N * N, S.begin());
      } else {
        std::fill(S.begin(), S.end(), acc_t(0));
      }
      for (int64_t t = 0; t < d.T; ++t) {
        if (saved != nullptr && t % kChunk == 0)  // null: inference, nothing to keep
          std::copy(S.begin(), S.end(), saved + (bh * d.chunks() + t / kChunk) * N * N);
        const int64_t o = d.at(bi, t, h);
        if (init.restarts(bi, t, d.T)) {
          const acc_t* R = init.restart_state(bi, h, N);
          std::copy(R, R + N * N, S.begin());
        }
        for (int64_t j = 0; j < N; ++j) decay[j] = std::exp(-std::exp(w[o + j]));
        step_state(S.data(), decay.data(), k + o, v + o, a + o, b + o, sa.data(), N);
        for (int64_t i = 0; i < N; ++i) {
          acc_t s = 0;
          for (int64_t j = 0; j < N; ++j) s += S[i * N + j] * r[o + j];
          y[o + i] = s;
        }
      }
      if (init.sT != nullptr) std::copy(S.begin(), S.end(), init.sT + bh * N * N);
    }
  });
}


template <typename acc_t>
void backward_loops(const Dims& d, const acc_t* r, const acc_t* w, const acc_t* k,
                    const acc_t* v, const acc_t* a, const acc_t* b, const acc_t* dy,
                    const acc_t* saved, acc_t* dr, acc_t* dw, acc_t* dk, acc_t* dv, acc_t* da,
                    acc_t* db, const InitialState<acc_t>& init) {
  const int64_t N = d.N, NN = N * N;
  at::parallel_for(0, d.B * d.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> G(NN), states((kChunk + 1) * NN), sa(kChunk * N), decay(kChunk * N),
        dsa(N);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t bi = bh / d.H, h = bh % d.H;
      if (init.dsT != nullptr) std::copy(init.dsT + bh * NN, init.dsT + (bh + 1) * NN, G.begin());
      else std::fill(G.begin(), G.end(), acc_t(0));
      if (init.ds_reset != nullptr) std::fill(init.ds_reset + bh * NN, init.ds_reset + (bh + 1) * NN, acc_t(0));
      for (int64_t c = d.chunks() - 1; c >= 0; --c) {
        const int64_t t0 = c * kChunk, t1 = std::min(d.T, t0 + kChunk);
        // states[s] = S_{t0 + s - 1}: recompute the chunk from its saved start. A step that
        // restarts reads R instead (prev_of).
        std::copy(saved + (bh * d.chunks() + c) * NN, saved + (bh * d.chunks() + c + 1) * NN,
                  states.begin());
        auto prev_of = [&](int64_t t) {
          return init.restarts(bi, t, d.T) ? init.restart_state(bi, h, N) : states.data() + (t - t0) * NN;
        };
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t o = d.at(bi, t, h), s = t - t0;
          for (int64_t j = 0; j < N; ++j) decay[s * N + j] = std::exp(-std::exp(w[o + j]));
          std::copy(prev_of(t), prev_of(t) + NN, states.begin() + (s + 1) * NN);
          step_state(states.data() + (s + 1) * NN, decay.data() + s * N, k + o, v + o, a + o,
                     b + o, sa.data() + s * N, N);
        }
        for (int64_t t = t1 - 1; t >= t0; --t) {
          const int64_t o = d.at(bi, t, h), s = t - t0;
          const acc_t* S_now = states.data() + (s + 1) * NN;
          const acc_t* S_prev = prev_of(t);
          const acc_t* dec = decay.data() + s * N;
          const acc_t* sat = sa.data() + s * N;
          for (int64_t j = 0; j < N; ++j) {
            acc_t acc = 0;
            for (int64_t i = 0; i < N; ++i) acc += S_now[i * N + j] * dy[o + i];
            dr[o + j] = acc;
          }
          for (int64_t i = 0; i < N; ++i)
            for (int64_t j = 0; j < N; ++j) G[i * N + j] += dy[o + i] * r[o + j];
          for (int64_t i = 0; i < N; ++i) {
            acc_t gv = 0, gs = 0;
            for (int64_t j = 0; j < N; ++j) {
              gv += G[i * N + j] * k[o + j];
              gs += G[i * N + j] * b[o + j];
            }
            dv[o + i] = gv;
            dsa[i] = gs;
          }
          for (int64_t j = 0; j < N; ++j) {
            acc_t gk = 0, gb = 0, gd = 0, ga = 0;
            for (int64_t i = 0; i < N; ++i) {
              gk += G[i * N + j] * v[o + i];
              gb += G[i * N + j] * sat[i];
              gd += G[i * N + j] * S_prev[i * N + j];
              ga += S_prev[i * N + j] * dsa[i];
            }
            dk[o + j] = gk;
            db[o + j] = gb;
            dw[o + j] = gd * dec[j] * -std::exp(w[o + j]);
            da[o + j] = ga;
          }
          for (int64_t i = 0; i < N; ++i)
            for (int64_t j = 0; j < N; ++j)
              G[i * N + j] = G[i * N + j] * dec[j] + dsa[i] * a[o + j];
          if (init.restarts(bi, t, d.T)) {  // G = dL/dR for this restart; nothing flows further back
            if (init.ds_reset != nullptr)
              for (int64_t e = 0; e < NN; ++e) init.ds_reset[bh * NN + e] += G[e];
            std::fill(G.begin(), G.end(), acc_t(0));
          }
        }
      }
      if (init.ds0 != nullptr) std::copy(G.begin(), G.end(), init.ds0 + bh * NN);  // G = dL/dS_0
    }
  });
}

Dims dims_of(const at::Tensor& r) { return {r.size(0), r.size(1), r.size(2), r.size(3)}; }

// wkv7_reset's extra inputs: the restart mask [B, T] and the state restarted from (both
// undefined: no restarts).
struct Restarts {
  at::Tensor reset, s_reset;
  bool defined() const { return reset.defined(); }
};

// float32 / bfloat16: the fast kernel on the inputs as they are (contiguous), states in float32.
struct FastCall {
  std::vector<at::Tensor> keep;  // the contiguous inputs the problem points into
  wkv7_fast::Problem p;

  FastCall(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
           const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0, const Restarts& restarts) {
    for (const at::Tensor* x : {&r, &w, &k, &v, &a, &b}) keep.push_back(x->contiguous());
    p.B = r.size(0), p.T = r.size(1), p.H = r.size(2), p.N = r.size(3);
    p.bf16 = r.scalar_type() == at::kBFloat16;
    p.r = keep[0].data_ptr(), p.w = keep[1].data_ptr(), p.k = keep[2].data_ptr();
    p.v = keep[3].data_ptr(), p.a = keep[4].data_ptr(), p.b = keep[5].data_ptr();
    if (s0.defined()) {
      keep.push_back(s0.to(at::kFloat).contiguous());
      p.s0 = keep.back().data_ptr<float>();
      p.s0_batch_stride = s0.dim() == 4 ? p.H * p.N * p.N : 0;
    }
    if (restarts.defined()) {
      keep.push_back(restarts.reset.contiguous());
      p.reset = keep.back().data_ptr<bool>();
      keep.push_back(restarts.s_reset.to(at::kFloat).contiguous());
      p.s_reset = keep.back().data_ptr<float>();
      p.s_reset_batch_stride = restarts.s_reset.dim() == 4 ? p.H * p.N * p.N : 0;
    }
  }
};

// y, plus the chunk-start states when `save_for_backward` (inference keeps none); from the
// initial state s0 when it is defined; the final state into *final_state when that is given
// ([B, H, N, N], float64 for float64 inputs, else float32).
std::tuple<at::Tensor, at::Tensor, at::Tensor> run_forward(
    const char* op, const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
    const at::Tensor& v, const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0,
    bool save_for_backward, at::Tensor* final_state = nullptr, const Restarts& restarts = {}) {
  check_wkv7_inputs(op, r, w, k, v, a, b);
  if (s0.defined()) check_initial_state(op, s0, r);
  if (restarts.defined()) check_reset(op, restarts.reset, restarts.s_reset, r);
  const at::ScalarType acc = accumulation_type(r, op);
  const Dims d = dims_of(r);
  if (final_state != nullptr) *final_state = at::empty({d.B, d.H, d.N, d.N}, r.options().dtype(acc));
  if (acc == at::kFloat) {
    FastCall call(r, w, k, v, a, b, s0, restarts);
    at::Tensor y = at::empty(r.sizes(), r.options().memory_format(at::MemoryFormat::Contiguous));
    at::Tensor saved = save_for_backward ? at::empty({d.B, d.H, d.chunks(), d.N, d.N}, r.options().dtype(at::kFloat))
                                         : at::Tensor();
    call.p.y = y.data_ptr();
    call.p.saved = save_for_backward ? saved.data_ptr<float>() : nullptr;
    call.p.sT = final_state != nullptr ? final_state->data_ptr<float>() : nullptr;
    wkv7_fast::run_forward(call.p);
    return {y, saved, at::empty({0}, r.options().dtype(at::kFloat))};
  }
  auto cvt = [&](const at::Tensor& x) { return x.to(acc).contiguous(); };
  at::Tensor R = cvt(r), W = cvt(w), K = cvt(k), V = cvt(v), A = cvt(a), Bt = cvt(b);
  at::Tensor S0 = s0.defined() ? cvt(s0) : at::Tensor();
  const at::Tensor SR = restarts.defined() ? cvt(restarts.s_reset) : at::Tensor();
  const at::Tensor RESET = restarts.defined() ? restarts.reset.contiguous() : at::Tensor();
  at::Tensor y = at::empty(r.sizes(), R.options());
  at::Tensor saved = save_for_backward ? at::empty({d.B, d.H, d.chunks(), d.N, d.N}, R.options())
                                       : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(acc, "wkv7_forward_cpu", [&] {
    InitialState<scalar_t> init;
    if (S0.defined()) {
      init.s0 = S0.data_ptr<scalar_t>();
      init.batch_stride = S0.dim() == 4 ? d.H * d.N * d.N : 0;
    }
    if (final_state != nullptr) init.sT = final_state->data_ptr<scalar_t>();
    if (restarts.defined()) {
      init.reset = RESET.data_ptr<bool>();
      init.s_reset = SR.data_ptr<scalar_t>();
      init.s_reset_batch_stride = SR.dim() == 4 ? d.H * d.N * d.N : 0;
    }
    forward_loops<scalar_t>(d, R.data_ptr<scalar_t>(), W.data_ptr<scalar_t>(),
                            K.data_ptr<scalar_t>(), V.data_ptr<scalar_t>(),
                            A.data_ptr<scalar_t>(), Bt.data_ptr<scalar_t>(),
                            y.data_ptr<scalar_t>(),
                            save_for_backward ? saved.data_ptr<scalar_t>() : nullptr, init);
  });
  return {y.to(r.scalar_type()), saved, at::empty({0}, R.options())};
}

// The six input gradients, the initial state's when s0 is defined, and the restart state's when
// restarts are. With dsT defined (wkv7_state_passing), the gradient also flows in through the
// final state.
std::vector<at::Tensor> run_backward(const char* op, const at::Tensor& r, const at::Tensor& w,
                                     const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
                                     const at::Tensor& b, const at::Tensor& s0, const at::Tensor& dy,
                                     const at::Tensor& saved_state, const at::Tensor& dsT = {},
                                     const Restarts& restarts = {}) {
  check_wkv7_inputs(op, r, w, k, v, a, b);
  if (s0.defined()) check_initial_state(op, s0, r);
  if (restarts.defined()) check_reset(op, restarts.reset, restarts.s_reset, r);
  check_same_as_r(op, "dy", dy, r);
  const at::ScalarType acc = accumulation_type(r, op);
  const Dims d = dims_of(r);
  if (dsT.defined()) check_final_state_gradient(op, dsT, r);
  const at::Tensor DST = dsT.defined() ? dsT.to(acc).contiguous() : at::Tensor();
  TORCH_CHECK(saved_state.defined() &&
                  saved_state.sizes() == at::IntArrayRef({d.B, d.H, d.chunks(), d.N, d.N}),
              op, ": argument 'saved_state' is not the one the forward (CPU) made for these inputs");
  if (acc == at::kFloat) {
    FastCall call(r, w, k, v, a, b, s0, restarts);
    const at::Tensor DY = dy.to(r.scalar_type()).contiguous(), S = saved_state.to(at::kFloat).contiguous();
    std::vector<at::Tensor> g;
    for (int i = 0; i < 6; ++i) g.push_back(at::empty(r.sizes(), r.options().memory_format(at::MemoryFormat::Contiguous)));
    at::Tensor ds0 = s0.defined() ? at::empty({d.B, d.H, d.N, d.N}, r.options().dtype(at::kFloat)) : at::Tensor();
    at::Tensor ds_reset =
        restarts.defined() ? at::empty({d.B, d.H, d.N, d.N}, r.options().dtype(at::kFloat)) : at::Tensor();
    call.p.ds_reset = restarts.defined() ? ds_reset.data_ptr<float>() : nullptr;
    call.p.dy = DY.data_ptr();
    call.p.saved = S.data_ptr<float>();
    call.p.ds0 = s0.defined() ? ds0.data_ptr<float>() : nullptr;
    call.p.dsT = DST.defined() ? DST.data_ptr<float>() : nullptr;
    call.p.dr = g[0].data_ptr(), call.p.dw = g[1].data_ptr(), call.p.dk = g[2].data_ptr();
    call.p.dv = g[3].data_ptr(), call.p.da = g[4].data_ptr(), call.p.db = g[5].data_ptr();
    wkv7_fast::run_backward(call.p);
    if (s0.defined()) g.push_back(initial_state_gradient(ds0, s0));
    if (restarts.defined()) g.push_back(initial_state_gradient(ds_reset, restarts.s_reset));
    return g;
  }
  auto cvt = [&](const at::Tensor& x) { return x.to(acc).contiguous(); };
  at::Tensor R = cvt(r), W = cvt(w), K = cvt(k), V = cvt(v), A = cvt(a), Bt = cvt(b),
             DY = cvt(dy), S = cvt(saved_state);
  std::vector<at::Tensor> g;
  for (int i = 0; i < 6; ++i) g.push_back(at::empty(r.sizes(), R.options()));
  at::Tensor ds0 = s0.defined() ? at::empty({d.B, d.H, d.N, d.N}, R.options()) : at::Tensor();
  at::Tensor ds_reset = restarts.defined() ? at::empty({d.B, d.H, d.N, d.N}, R.options()) : at::Tensor();
  const at::Tensor SR = restarts.defined() ? cvt(restarts.s_reset) : at::Tensor();
  const at::Tensor RESET = restarts.defined() ? restarts.reset.contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(acc, "wkv7_backward_cpu", [&] {
    InitialState<scalar_t> init;
    init.ds0 = ds0.defined() ? ds0.data_ptr<scalar_t>() : nullptr;
    init.dsT = DST.defined() ? DST.data_ptr<scalar_t>() : nullptr;
    if (restarts.defined()) {
      init.reset = RESET.data_ptr<bool>();
      init.s_reset = SR.data_ptr<scalar_t>();
      init.s_reset_batch_stride = SR.dim() == 4 ? d.H * d.N * d.N : 0;
      init.ds_reset = ds_reset.data_ptr<scalar_t>();
    }
    backward_loops<scalar_t>(
        d, R.data_ptr<scalar_t>(), W.data_ptr<scalar_t>(), K.data_ptr<scalar_t>(),
        V.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(), Bt.data_ptr<scalar_t>(),
        DY.data_ptr<scalar_t>(), S.data_ptr<scalar_t>(), g[0].data_ptr<scalar_t>(),
        g[1].data_ptr<scalar_t>(), g[2].data_ptr<scalar_t>(), g[3].data_ptr<scalar_t>(),
        g[4].data_ptr<scalar_t>(), g[5].data_ptr<scalar_t>(), init);
  });
  for (auto& x : g) x = x.to(r.scalar_type());
  if (s0.defined()) g.push_back(initial_state_gradient(ds0, s0));
  if (restarts.defined()) g.push_back(initial_state_gradient(ds_reset, restarts.s_reset));
  return g;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> wkv7_forward_cpu(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& a, const at::Tensor& b) {
  return run_forward("rwkv7::wkv7_forward (CPU)", r, w, k, v, a, b, {}, /*save_for_backward=*/true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_backward_cpu(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                  const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                  const at::Tensor& dy, const at::Tensor& saved_state,
                  const at::Tensor& /*saved_sa: unused on the CPU*/) {
  const auto g = run_backward("rwkv7::wkv7_backward (CPU)", r, w, k, v, a, b, {}, dy, saved_state);
  return {g[0], g[1], g[2], g[3], g[4], g[5]};
}

// Without autograd (inference), wkv7 is just the forward's output; no state is saved.
at::Tensor wkv7_cpu(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                    const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  return std::get<0>(run_forward("rwkv7::wkv7 (CPU)", r, w, k, v, a, b, {}, /*save_for_backward=*/false));
}

// wkv7 from an initial state s0 ([H, N, N] shared, or [B, H, N, N]) instead of 0.
at::Tensor wkv7_state_cpu(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                          const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                          const at::Tensor& s0) {
  return std::get<0>(run_forward("rwkv7::wkv7_state (CPU)", r, w, k, v, a, b, s0, /*save_for_backward=*/false));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> wkv7_state_forward_cpu(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0) {
  return run_forward("rwkv7::wkv7_state_forward (CPU)", r, w, k, v, a, b, s0, /*save_for_backward=*/true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_state_backward_cpu(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                        const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                        const at::Tensor& s0, const at::Tensor& dy, const at::Tensor& saved_state,
                        const at::Tensor& /*saved_sa: unused on the CPU*/) {
  TORCH_CHECK(s0.defined(), "rwkv7::wkv7_state_backward (CPU): argument 's0' is undefined");
  const auto g = run_backward("rwkv7::wkv7_state_backward (CPU)", r, w, k, v, a, b, s0, dy, saved_state);
  return {g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
}

// wkv7_state_passing: wkv7_state that also returns the final state, and whose backward takes
// its gradient (one chunk of a long sample; the next chunk starts from sT).
std::tuple<at::Tensor, at::Tensor> wkv7_state_passing_cpu(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                                                          const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                                          const at::Tensor& s0) {
  at::Tensor sT;
  auto out = run_forward("rwkv7::wkv7_state_passing (CPU)", r, w, k, v, a, b, s0, /*save_for_backward=*/false, &sT);
  return {std::get<0>(out), sT};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> wkv7_state_passing_forward_cpu(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
    const at::Tensor& b, const at::Tensor& s0) {
  at::Tensor sT;
  auto [y, saved, saved_sa] =
      run_forward("rwkv7::wkv7_state_passing_forward (CPU)", r, w, k, v, a, b, s0, /*save_for_backward=*/true, &sT);
  return {y, sT, saved, saved_sa};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_state_passing_backward_cpu(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0, const at::Tensor& dy,
                                const at::Tensor& dsT, const at::Tensor& saved_state,
                                const at::Tensor& /*saved_sa: unused on the CPU*/) {
  const char* op = "rwkv7::wkv7_state_passing_backward (CPU)";
  TORCH_CHECK(s0.defined(), op, ": argument 's0' is undefined");
  TORCH_CHECK(dsT.defined(), op, ": argument 'dsT' is undefined");
  const auto g = run_backward(op, r, w, k, v, a, b, s0, dy, saved_state, dsT);
  return {g[0], g[1], g[2], g[3], g[4], g[5], g[6]};
}

// wkv7_reset: wkv7_state_passing restarting from s_reset at every step that reset marks.
std::tuple<at::Tensor, at::Tensor> wkv7_reset_cpu(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                                                  const at::Tensor& v, const at::Tensor& a, const at::Tensor& b,
                                                  const at::Tensor& s0, const at::Tensor& reset,
                                                  const at::Tensor& s_reset) {
  at::Tensor sT;
  auto out = run_forward("rwkv7::wkv7_reset (CPU)", r, w, k, v, a, b, s0, /*save_for_backward=*/false, &sT,
                         {reset, s_reset});
  return {std::get<0>(out), sT};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> wkv7_reset_forward_cpu(
    const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v, const at::Tensor& a,
    const at::Tensor& b, const at::Tensor& s0, const at::Tensor& reset, const at::Tensor& s_reset) {
  at::Tensor sT;
  auto [y, saved, saved_sa] = run_forward("rwkv7::wkv7_reset_forward (CPU)", r, w, k, v, a, b, s0,
                                          /*save_for_backward=*/true, &sT, {reset, s_reset});
  return {y, sT, saved, saved_sa};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
wkv7_reset_backward_cpu(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k, const at::Tensor& v,
                        const at::Tensor& a, const at::Tensor& b, const at::Tensor& s0, const at::Tensor& reset,
                        const at::Tensor& s_reset, const at::Tensor& dy, const at::Tensor& dsT,
                        const at::Tensor& saved_state, const at::Tensor& /*saved_sa: unused on the CPU*/) {
  const char* op = "rwkv7::wkv7_reset_backward (CPU)";
  TORCH_CHECK(s0.defined(), op, ": argument 's0' is undefined");
  TORCH_CHECK(dsT.defined(), op, ": argument 'dsT' is undefined");
  const auto g = run_backward(op, r, w, k, v, a, b, s0, dy, saved_state, dsT, {reset, s_reset});
  return {g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]};
}

// The raw-decay variant on the CPU is the composite: w = -softplus(-x) - 0.5, then the scan. (Its
// gradients come from the autograd kernel, which differentiates this composite.)
at::Tensor wkv7_raw_decay_cpu(const at::Tensor& r, const at::Tensor& x, const at::Tensor& k,
                              const at::Tensor& v, const at::Tensor& a, const at::Tensor& b) {
  return wkv7_cpu(r, -at::softplus(-x) - 0.5, k, v, a, b);
}

}  // namespace

TORCH_LIBRARY_IMPL(rwkv7, CPU, m) {
  m.impl("wkv7", &wkv7_cpu);
  m.impl("wkv7_raw_decay", &wkv7_raw_decay_cpu);
  m.impl("wkv7_forward", &wkv7_forward_cpu);
  m.impl("wkv7_backward", &wkv7_backward_cpu);
  m.impl("wkv7_state", &wkv7_state_cpu);
  m.impl("wkv7_state_forward", &wkv7_state_forward_cpu);
  m.impl("wkv7_state_backward", &wkv7_state_backward_cpu);
  m.impl("wkv7_state_passing", &wkv7_state_passing_cpu);
  m.impl("wkv7_state_passing_forward", &wkv7_state_passing_forward_cpu);
  m.impl("wkv7_state_passing_backward", &wkv7_state_passing_backward_cpu);
  m.impl("wkv7_reset", &wkv7_reset_cpu);
  m.impl("wkv7_reset_forward", &wkv7_reset_forward_cpu);
  m.impl("wkv7_reset_backward", &wkv7_reset_backward_cpu);
}

}  // namespace rwkv7_ops
