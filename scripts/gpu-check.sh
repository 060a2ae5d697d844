#!/usr/bin/env bash
# The project's GPU checks, in one device call (docs/gpu-report.md):
#   source .device-kit/gpu-env.sh && scripts/gpu-check.sh "$OUT" 2>&1 | tee "$OUT/log.txt"
#
# Ordered so that the most valuable figures come back first if the call is cut short:
#   1. RWKV-LM's kernels compile in the background while the project builds (three targets);
#   2. the CUDA tests (Cuda.*) and the CPU op tests beside them;
#   3. the MiniPile config (L12-D768, V65536, ctx 512, micro_bsz 16, bf16) at grad_cp 1 and 0:
#      ours with fused_ops 1 and 0 and the seed (230d32b); the one-rank NCCL tests; ZeRO stages
#      0-3 under torchrun where there are two GPUs or more; RWKV-LM's
#      newest train_temp; tests/gpu/wkv7_vs_seed.py; the remaining rows; the profiles.
# Every step runs under `timeout`, clipped to an overall deadline (GPU_CHECK_SECONDS after the
# start, 540 by default: a 600 s call keeps time for the summary); a step with under 20 s left is
# skipped. steps.jsonl records each step's exit status and seconds; bench rows (JSON lines only)
# go to bench.jsonl, the benchmarks' other output to bench-output.log. scripts/gpu-summary.py
# writes summary.md at the end, whatever ran.
#
# GPU_CHECK_STEPS / GPU_CHECK_WARMUP (20 / 5) set the benchmark's length, GPU_CHECK_CONFIG the
# benchmarked config, GPU_CHECK_BUILD (build-gpu) the build folder, GPU_CHECK_SEED_ARGS more arguments
# for seed_bench.py: a dry run on a CPU machine uses a small config and the seed's naive CPU path
# (docs/gpu-report.md).
set -uo pipefail
OUT=${1:?usage: scripts/gpu-check.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
KIT=$PWD/.device-kit
STEPS=${GPU_CHECK_STEPS:-20}
WARMUP=${GPU_CHECK_WARMUP:-5}
CONFIG=${GPU_CHECK_CONFIG:-configs/minipile-L12-D768.yaml}
B=${GPU_CHECK_BUILD:-build-gpu}
T0=$(date +%s)
DEADLINE=$(( T0 + ${GPU_CHECK_SECONDS:-540} ))
export PYTHONUNBUFFERED=1

say() { echo "== [$(( $(date +%s) - T0 )) s] $*"; }

# limited SECONDS NAME CMD...: CMD under min(SECONDS, time to the deadline); skipped under 20 s.
# Its status and time go to steps.jsonl (124: timed out; "skipped": no time left).
limited() {
  local secs=$1 name=$2 t rc left
  shift 2
  t=$(date +%s)
  left=$(( DEADLINE - t ))
  if [ "$left" -lt 20 ]; then
    echo "{\"step\": \"$name\", \"rc\": \"skipped\", \"seconds\": 0}" >> "$OUT/steps.jsonl"
    say "$name: skipped, ${left} s left"
    return 125
  fi
  [ "$secs" -gt "$left" ] && secs=$left
  timeout -k 5 "$secs" "$@"
  rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $(( $(date +%s) - t ))}" >> "$OUT/steps.jsonl"
  return "$rc"
}

# bench_row SECONDS NAME CMD...: a benchmark whose JSON row goes to bench.jsonl with "check": NAME
bench_row() {
  local secs=$1 name=$2
  shift 2
  limited "$secs" "$name" "$@" 2>&1 | tee -a "$OUT/bench-output.log" | grep --line-buffered '^{' \
    | python3 -c 'import json,sys
for line in sys.stdin:
    try: row = json.loads(line)
    except ValueError: continue
    row["check"] = sys.argv[1]; print(json.dumps(row), flush=True)' "$name" | tee -a "$OUT/bench.jsonl"
}

ours() {  # ours NAME key=value...
  local name=$1
  shift
  bench_row 90 "$name" "$B"/rwkv7 bench --config "$CONFIG" --steps "$STEPS" --warmup "$WARMUP" "$@"
}

python_bench() {  # python_bench NAME TRAIN_TEMP seed_bench-args...
  local name=$1 tt=$2
  shift 2
  [ -d "$tt" ] || { say "$name: $tt is not in the kit; row left out"; return; }
  # shellcheck disable=SC2086  # GPU_CHECK_SEED_ARGS is a list of words
  bench_row 150 "$name" python3 tests/gpu/run_seed_bench.py --seed-bench "$KIT/seed_bench.py" -- \
    --train-temp "$tt" --steps "$STEPS" --warmup "$WARMUP" ${GPU_CHECK_SEED_ARGS:-} "$@"
}

# The background kernel build: its processes share one process group (timeout's), so a stuck
# build is stopped whole; a lock file left by a killed build would make the next load() wait forever.
stop_prebuild() {
  local p g own
  own=$(ps -o pgid= $$ | tr -d ' ')
  for p in $(pgrep -f prebuild_rwkv_lm_kernels.py); do
    g=$(ps -o pgid= "$p" | tr -d ' ')
    [ -n "$g" ] && [ "$g" != "$own" ] && kill -- -"$g" 2>/dev/null
  done
  find "${TORCH_EXTENSIONS_DIR:-$HOME/.cache/torch_extensions}" -name lock -delete 2>/dev/null
}
trap 'stop_prebuild' EXIT

# prebuilt_ok TRAIN_TEMP: every extension of that train_temp built (prebuild.log's rows)
prebuilt_ok() {
  python3 - "$OUT/prebuild.log" "$1" <<'EOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
mine = [r for r in rows if os.path.realpath(r["train_temp"]) == os.path.realpath(sys.argv[2])]
sys.exit(0 if mine and all(r["ok"] for r in mine) else 1)
EOF
}

finish() { say "$1"; python3 scripts/gpu-summary.py "$OUT"; exit "${2:-0}"; }

: > "$OUT/steps.jsonl"; : > "$OUT/bench.jsonl"; : > "$OUT/prebuild.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpus.txt"

say "RWKV-LM's kernels: compiling in the background (prebuild.log)"
prebuild=()
for tt in seed_train_temp latest_train_temp; do [ -d "$KIT/$tt" ] && prebuild+=(--train-temp "$KIT/$tt"); done
PREBUILD_PID=
if [ ${#prebuild[@]} -gt 0 ]; then
  limited 330 prebuild python3 tests/gpu/prebuild_rwkv_lm_kernels.py "${prebuild[@]}" --kernel "" --kernel @rwkv3 \
    > "$OUT/prebuild.log" 2>&1 &
  PREBUILD_PID=$!
fi

say "build (rwkv7, rwkv7_tests, rwkv7_ops) with CUDA"
limited 90 configure cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}" -DCMAKE_PREFIX_PATH="${CMAKE_PREFIX_PATH:-}" \
  -DRWKV7_CUDA_EMU_TSAN=OFF -DRWKV7_PYTHON="$(command -v python3)" -DPython3_EXECUTABLE="$(command -v python3)" \
  || finish "configure failed" 1
limited 330 build cmake --build "$B" -j"$(nproc)" --target rwkv7_app rwkv7_tests rwkv7_ops || finish "build failed" 1

say "CUDA tests (and the CPU op tests beside them)"
limited 150 cuda-tests "$B"/tests/rwkv7_tests --gtest_filter='Cuda.*:Wkv7Cpu.*:FusedOps.*:-Cuda.Nccl*' \
  --gtest_output=json:"$OUT/cuda-tests.json"

if [ -n "$PREBUILD_PID" ]; then
  say "waiting for the background kernel build (benchmarks get the machine to themselves)"
  wait "$PREBUILD_PID"
  stop_prebuild
  grep '^{' "$OUT/prebuild.log"
fi

say "training step, $CONFIG: ours and the seed's, grad_cp 1 and 0"
for cp in 1 0; do
  ours "ours fused_ops=1 grad_cp=$cp" fused_ops=1 grad_cp=$cp
  python_bench "seed grad_cp=$cp" "$KIT/seed_train_temp" --grad-cp $cp
  ours "ours fused_ops=0 grad_cp=$cp" fused_ops=0 grad_cp=$cp
done

say "NCCL in a world of one"
limited 45 nccl-tests "$B"/tests/rwkv7_tests --gtest_filter='Cuda.Nccl*' --gtest_output=json:"$OUT/nccl-tests.json"

say "ZeRO stages 0-3 under torchrun, one process per GPU (a machine of two GPUs or more)"
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l)
if [ "$NGPU" -ge 2 ]; then
  for stage in 0 1 2 3; do
    bench_row 90 "ours torchrun x$NGPU zero_stage=$stage" python3 -m torch.distributed.run --nproc-per-node "$NGPU" \
      --no-python "$B"/rwkv7 bench --config "$CONFIG" --steps 5 --warmup 2 zero_stage=$stage grad_cp=1
  done
else
  say "$NGPU GPU: ZeRO needs two processes on two GPUs; rows left out"
fi

say "RWKV-LM's newest train_temp"
if [ -d "$KIT/latest_train_temp" ] && prebuilt_ok "$KIT/latest_train_temp"; then
  for cp in 1 0; do
    python_bench "rwkv-lm-latest grad_cp=$cp" "$KIT/latest_train_temp" --grad-cp $cp
    python_bench "rwkv-lm-latest @rwkv3 grad_cp=$cp" "$KIT/latest_train_temp" --grad-cp $cp --kernel @rwkv3
  done
else
  say "its kernels did not all build (prebuild.log): rows left out"
fi

say "WKV-7: ours beside the seed's kernel"
if [ -d "$KIT/seed_train_temp" ]; then
  limited 120 wkv7-vs-seed python3 tests/gpu/wkv7_vs_seed.py --ops "$B"/librwkv7_ops.so \
    --seed-cuda "$KIT/seed_train_temp/cuda" --golden tests/data/wkv7_cases.pth > "$OUT/wkv7.json"
  cat "$OUT/wkv7.json"
fi

say "the chunked head, head size 128, fine-tuning"
ours "ours fused_ops=1 head_chunk=4096" fused_ops=1 head_chunk=4096
ours "ours fused_ops=1 head_size=128" fused_ops=1 head_size=128
ours "ours fused_ops=0 head_size=128" fused_ops=0 head_size=128
ours "ours state tuning" train_type=state
ours "ours lora fused_ops=1" peft=lora fused_ops=1

say "profiles: top kernels by GPU time, ours (fused_ops 1 and 0) and the seed's, grad_cp 1"
limited 90 profile-ours-fused "$B"/rwkv7 bench --config "$CONFIG" --steps 5 --warmup 3 \
  --profile "$OUT/profile-ours-fused.json" fused_ops=1 grad_cp=1 > /dev/null
if [ -d "$KIT/seed_train_temp" ]; then
  # shellcheck disable=SC2086
  limited 120 profile-seed python3 tests/gpu/run_seed_bench.py --seed-bench "$KIT/seed_bench.py" \
    --profile "$OUT/profile-seed.json" -- --train-temp "$KIT/seed_train_temp" --steps 5 --warmup 3 --grad-cp 1 \
    ${GPU_CHECK_SEED_ARGS:-} > /dev/null
fi
limited 90 profile-ours "$B"/rwkv7 bench --config "$CONFIG" --steps 5 --warmup 3 \
  --profile "$OUT/profile-ours.json" fused_ops=0 grad_cp=1 > /dev/null

finish "done"
