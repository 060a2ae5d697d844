#!/usr/bin/env bash
# Shows that the CUDA emulation tests catch broken kernels: applies one mutation at a time to a
# kernel file (ops/*/..._kernels.cuh, ops/cuda_common.cuh), rebuilds the emulation tests in build/,
# runs the op's tests and expects them to FAIL; restores every file at the end. Output: one block
# per mutation with the failing lines.
#   scripts/cuda-emu-mutations.sh [BUILD_DIR] | tee docs/bench/cuda-emu-mutations.txt
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
FILES=(ops/wkv7/wkv7_kernels.cuh ops/cuda_common.cuh ops/token_shift_mix/token_shift_mix_kernels.cuh
       ops/kk_pre/kk_pre_kernels.cuh ops/vres_gate/vres_gate_kernels.cuh ops/relu_square/relu_square_kernels.cuh
       ops/lnx_rkvres_xg/lnx_rkvres_xg_kernels.cuh ops/cross_entropy_l2wrap/cross_entropy_l2wrap_kernels.cuh)
for f in "${FILES[@]}"; do cp "$f" "$f.orig"; done
restore() {
  for f in "${FILES[@]}"; do mv "$f.orig" "$f"; done
  cmake --build "$BUILD" --target cuda_emu_tests cuda_emu_tests_tsan >/dev/null
}
trap restore EXIT
caught=0; total=0

# mutate FILE NAME TARGET FILTER FROM TO: replace the one occurrence of FROM in FILE by TO,
# rebuild TARGET, run its tests matching FILTER (gtest)
mutate() {
  local file=$1 name=$2 target=$3 filter=$4 from=$5 to=$6
  total=$((total + 1))
  echo "== mutation: $name ($file)"
  echo "   - $from"
  echo "   + $to"
  for f in "${FILES[@]}"; do cmp -s "$f.orig" "$f" || cp "$f.orig" "$f"; done  # (untouched: no rebuild)
  FROM=$from TO=$to python3 - "$file" <<'PY' || { echo "   mutation text not found"; return; }
import os, sys
p = sys.argv[1]; s = open(p).read(); f, t = os.environ["FROM"], os.environ["TO"]
assert s.count(f) == 1, f"expected exactly one occurrence, found {s.count(f)}"
open(p, "w").write(s.replace(f, t))
PY
  cmake --build "$BUILD" --target "$target" >/dev/null || { echo "   build failed"; return; }
  local out
  out=$(TSAN_OPTIONS="halt_on_error=1 exitcode=66" OMP_NUM_THREADS=1 timeout 900 \
        "$BUILD/tests/$target" --gtest_filter="$filter" 2>&1)
  local rc=$?
  if [ $rc -ne 0 ]; then
    caught=$((caught + 1))
    echo "   CAUGHT (exit $rc):"
  else
    echo "   NOT CAUGHT: the tests passed"
  fi
  echo "$out" | grep -E "Failure|Expected|Which is|which is|worst|WARNING: ThreadSanitizer|  (Write|Read|Previous) |FAILED|^\[  PASSED" \
    | grep -v "^\[       OK" | head -16 | sed 's/^/   | /'
}

W=ops/wkv7/wkv7_kernels.cuh
mutate $W "index off by one (forward: S·a misses its last channel)" cuda_emu_tests 'CudaEmu.Wkv7*' \
  "for (int j = 0; j < N; ++j) sa += a[j] * state[j];" \
  "for (int j = 0; j < N - 1; ++j) sa += a[j] * state[j];"
mutate $W "sign flipped (backward: dw)" cuda_emu_tests 'CudaEmu.Wkv7*' \
  "store(dw_ + idx, dd * di * dlog_decay[i]);" \
  "store(dw_ + idx, -dd * di * dlog_decay[i]);"
mutate $W "barrier removed (forward: after the shared loads), under ThreadSanitizer" cuda_emu_tests_tsan 'CudaEmu.Wkv7*' \
  "    b[i] = load(b_ + idx);
    __syncthreads();" \
  "    b[i] = load(b_ + idx);"
mutate $W "barrier removed (forward: top of the time loop, before shared memory is overwritten), under ThreadSanitizer" \
  cuda_emu_tests_tsan 'CudaEmu.Wkv7*' \
  "    __syncthreads();
    r[i] = load(r_ + idx);" \
  "    r[i] = load(r_ + idx);"
mutate $W "barrier removed (backward: after dsa_shared is written), under ThreadSanitizer" cuda_emu_tests_tsan 'CudaEmu.Wkv7*' \
  "    if (lead) dsa_shared[i] = dsa;
    __syncthreads();" \
  "    if (lead) dsa_shared[i] = dsa;"
# Not a mutation: the barrier just before `dsa_shared[i] = dsa` is redundant (the two barriers at
# the top of the time loop already separate the previous step's reads of dsa_shared from this
# write); removing it was tried and the tests, TSan included, rightly pass.
mutate $W "raw decay: the sigmoid's derivative dropped (backward: dx)" cuda_emu_tests 'CudaEmu.Wkv7RawDecay*' \
  "*dlog_d = -kExpMinusHalf * s * (1.f - s);" \
  "*dlog_d = -kExpMinusHalf * s;"
mutate $W "initial state: the forward starts from 0, not from s0" cuda_emu_tests 'CudaEmu.Wkv7State*' \
  "state[j] = s0_row == nullptr ? 0.f : s0_row[j];" \
  "state[j] = 0.f;"
mutate $W "initial state: its gradient taken from the column, not the row, of G" cuda_emu_tests 'CudaEmu.Wkv7State*' \
  "for (int jj = 0; jj < M; ++jj) row[jj] = G_row[jj];" \
  "for (int jj = 0; jj < M; ++jj) row[jj] = G_col[jj];"
mutate $W "state passing: the final state's gradient read transposed into G's rows" cuda_emu_tests 'CudaEmu.Wkv7StatePassing*' \
  "G_row[jj] = dsT == nullptr ? 0.f : dsT[i * N + j0 + jj];" \
  "G_row[jj] = dsT == nullptr ? 0.f : dsT[(j0 + jj) * N + i];"
mutate $W "state passing: the final state written scaled by the last decay" cuda_emu_tests 'CudaEmu.Wkv7StatePassing*' \
  "    for (int j = 0; j < N; ++j) row[j] = state[j];
  }
}" \
  "    for (int j = 0; j < N; ++j) row[j] = state[j] * decay[j];
  }
}"
mutate $W "restarts: the state before a restart not rebuilt (backward: steps back from R)" cuda_emu_tests 'CudaEmu.Wkv7Reset*' \
  "      rebuild = restart;" \
  "      rebuild = false;"
mutate $W "restarts: G not cleared at a restart (backward: the gradient leaks into the document before)" \
  cuda_emu_tests 'CudaEmu.Wkv7Reset*' \
  "        G_row[jj] = restart ? 0.f : G_row[jj];" \
  "        G_row[jj] = G_row[jj];"
mutate $W "restarts: S_t formed from R without v k (backward: the step back then misses R)" \
  cuda_emu_tests 'CudaEmu.Wkv7Reset*' \
  "S_col[jj] = R[(j0 + jj) * N + i] * di + sa[j0 + jj] * bi_ + v[j0 + jj] * ki;" \
  "S_col[jj] = R[(j0 + jj) * N + i] * di + sa[j0 + jj] * bi_;"
mutate $W "restarts with the raw decay: the rebuild reads x as if it were w (backward)" \
  cuda_emu_tests 'CudaEmu.Wkv7Reset*' \
  "    decay_of<kRawDecay>(load(w_ + row + i), &du, &unused);" \
  "    decay_of<false>(load(w_ + row + i), &du, &unused);"
mutate $W "split backward: a channel's last part left out of its sums" cuda_emu_tests 'CudaEmu.Wkv7*' \
  "for (int p = 1; p < kSplit; ++p) sum += buf[q * threads + p * N + i];" \
  "for (int p = 1; p < kSplit - 1; ++p) sum += buf[q * threads + p * N + i];"
mutate $W "split backward: the barrier between the parts' writes and reads removed, under ThreadSanitizer" \
  cuda_emu_tests_tsan 'CudaEmu.Wkv7*' \
  "    for (int q = 0; q < kSums; ++q) buf[q * threads + threadIdx.x] = sums[q];
    __syncthreads();" \
  "    for (int q = 0; q < kSums; ++q) buf[q * threads + threadIdx.x] = sums[q];"
mutate ops/cuda_common.cuh "block_sum's first barrier removed (a second sum overwrites the first before all have read it), under ThreadSanitizer" \
  cuda_emu_tests_tsan 'CudaEmu.KkPre*:CudaEmu.Lnx*' \
  "__device__ inline float block_sum(float x, float* buf) {
  const int i = threadIdx.x;
  __syncthreads();" \
  "__device__ inline float block_sum(float x, float* buf) {
  const int i = threadIdx.x;"
mutate ops/token_shift_mix/token_shift_mix_kernels.cuh "sign flipped (backward: dx's own-step term)" cuda_emu_tests 'CudaEmu.TokenShift*' \
  "acc += load(dout + j * rows * C + e) * (1.f - m);" \
  "acc += load(dout + j * rows * C + e) * (1.f + m);"
mutate ops/token_shift_mix/token_shift_mix_kernels.cuh "the last row block's partial sum left out (backward: dmix)" cuda_emu_tests 'CudaEmu.TokenShift*' \
  "return launch_sum_partials<T>(partials, long(n) * C, n * C, partial, dmix, stream);" \
  "return launch_sum_partials<T>(partials - 1, long(n) * C, n * C, partial, dmix, stream);"
mutate ops/kk_pre/kk_pre_kernels.cuh "normalize's projection term dropped (backward: du)" cuda_emu_tests 'CudaEmu.KkPre*' \
  "const float du = n.clamped ? dkk / 1e-12f : (dkk - kk * dot) / n.norm;" \
  "const float du = n.clamped ? dkk / 1e-12f : dkk / n.norm;"
mutate ops/vres_gate/vres_gate_kernels.cuh "the sigmoid's derivative dropped (backward: dv0 partials)" cuda_emu_tests 'CudaEmu.VresGate*' \
  "acc += load(dout + e) * (load(v_first + e) - load(v + e)) * s * (1.f - s);" \
  "acc += load(dout + e) * (load(v_first + e) - load(v + e)) * s;"
mutate ops/relu_square/relu_square_kernels.cuh "factor 2 dropped (backward: dx)" cuda_emu_tests 'CudaEmu.ReluSquare*' \
  "store(dx + e, 2.f * r * load(dout + e));" \
  "store(dx + e, r * load(dout + e));"
mutate ops/lnx_rkvres_xg/lnx_rkvres_xg_kernels.cuh "GroupNorm's projection term dropped (backward: dy)" cuda_emu_tests 'CudaEmu.Lnx*' \
  "store(dy_ + e, n.rstd * (dyhat - mean_dyhat - n.yhat * mean_dyhat_yhat));" \
  "store(dy_ + e, n.rstd * (dyhat - mean_dyhat));"
mutate ops/cross_entropy_l2wrap/cross_entropy_l2wrap_kernels.cuh "the seed's L2Wrap bug: its term not scaled by dloss (backward)" \
  cuda_emu_tests 'CudaEmu.CrossEntropy*' \
  "if (v == argmax) g += 1e-4f * mx;" \
  "if (v == argmax) g += 1e-4f * mx / *dloss;"
mutate ops/cross_entropy_l2wrap/cross_entropy_l2wrap_kernels.cuh "L2Wrap term left out (backward)" cuda_emu_tests 'CudaEmu.CrossEntropy*' \
  "if (v == argmax) g += 1e-4f * mx;" \
  "if (v == argmax) g += 0.f * mx;"
echo "== $caught of $total mutations caught"
[ "$caught" -eq "$total" ]
