#!/usr/bin/env bash
# The project's GPU checks, in one device call (docs/gpu-report.md):
#   source .device-kit/gpu-env.sh && scripts/gpu-check.sh "$OUT" 2>&1 | tee "$OUT/log.txt"
#
# Ordered so that the most valuable figures come back first if the call is cut short:
#   1. build (only the three targets needed) while RWKV-LM's kernels compile in the background;
#   2. the CUDA tests (Cuda.*, with the one-rank NCCL check) and the CPU op tests beside them;
#   3. the MiniPile config (L12-D768, V65536, ctx 512, micro_bsz 16, bf16) at grad_cp 1 and 0:
#      ours with fused_ops 0 and 1, the seed (230d32b); then RWKV-LM's newest train_temp;
#   4. tests/gpu/wkv7_vs_seed.py (our WKV-7 kernel beside the seed's);
#   5. the rest of issue 14's and 18's rows (head_chunk, head size 128, fine-tuning);
#   6. profiles of ours and the seed's step (top kernels by GPU time).
# Every step runs under `timeout`; steps.jsonl records each one's exit status and seconds; bench
# rows (JSON lines only) go to bench.jsonl, everything else to the log. scripts/gpu-summary.py
# prints the summary at the end (and writes summary.md).
#
# GPU_CHECK_STEPS / GPU_CHECK_WARMUP (20 / 5) set the benchmark's length, GPU_CHECK_CONFIG the
# benchmarked config, GPU_CHECK_BUILD (build-gpu) the build folder: a dry run on a CPU machine uses a
# small config and its existing build (docs/gpu-report.md).
set -uo pipefail
OUT=${1:?usage: scripts/gpu-check.sh OUT_DIR}
mkdir -p "$OUT"
KIT=$PWD/.device-kit
STEPS=${GPU_CHECK_STEPS:-20}
WARMUP=${GPU_CHECK_WARMUP:-5}
CONFIG=${GPU_CHECK_CONFIG:-configs/minipile-L12-D768.yaml}
B=${GPU_CHECK_BUILD:-build-gpu}
T0=$(date +%s)
export PYTHONUNBUFFERED=1

say() { echo "== [$(( $(date +%s) - T0 )) s] $*"; }

# limited SECONDS NAME CMD...: CMD under a time limit; its status and time go to steps.jsonl
limited() {
  local secs=$1 name=$2 t rc
  shift 2
  t=$(date +%s)
  timeout -k 10 "$secs" "$@"
  rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $(( $(date +%s) - t ))}" >> "$OUT/steps.jsonl"
  return "$rc"
}

# bench_row SECONDS NAME CMD...: a benchmark whose JSON line(s) go to bench.jsonl, the rest to the log
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
  bench_row 240 "$name" "$B"/rwkv7 bench --config "$CONFIG" --steps "$STEPS" --warmup "$WARMUP" "$@"
}

python_bench() {  # python_bench NAME TRAIN_TEMP seed_bench-args...
  local name=$1 tt=$2
  shift 2
  [ -d "$tt" ] || { say "$name: $tt is not in the kit; row left out"; return; }
  bench_row 360 "$name" python3 tests/gpu/run_seed_bench.py --seed-bench "$KIT/seed_bench.py" -- \
    --train-temp "$tt" --steps "$STEPS" --warmup "$WARMUP" "$@"
}

: > "$OUT/steps.jsonl"; : > "$OUT/bench.jsonl"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpus.txt"
GPUS=$(grep -c . "$OUT/gpus.txt")

say "RWKV-LM's kernels: compiling in the background (prebuild.log)"
prebuild=()
for tt in seed_train_temp latest_train_temp; do [ -d "$KIT/$tt" ] && prebuild+=(--train-temp "$KIT/$tt"); done
PREBUILD_PID=
if [ ${#prebuild[@]} -gt 0 ]; then
  limited 900 prebuild python3 tests/gpu/prebuild_rwkv_lm_kernels.py "${prebuild[@]}" --kernel "" --kernel @rwkv3 \
    > "$OUT/prebuild.log" 2>&1 &
  PREBUILD_PID=$!
fi

say "build (rwkv7, rwkv7_tests, rwkv7_ops) with CUDA"
limited 120 configure cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}" -DCMAKE_PREFIX_PATH="$CMAKE_PREFIX_PATH" \
  -DRWKV7_CUDA_EMU_TSAN=OFF -DRWKV7_PYTHON="$(command -v python3)" -DPython3_EXECUTABLE="$(command -v python3)" \
  || { say "configure failed"; python3 scripts/gpu-summary.py "$OUT"; exit 1; }
limited 600 build cmake --build "$B" -j"$(nproc)" --target rwkv7_app rwkv7_tests rwkv7_ops \
  || { say "build failed"; python3 scripts/gpu-summary.py "$OUT"; exit 1; }

say "CUDA tests (and the CPU op tests beside them)"
limited 420 cuda-tests "$B"/tests/rwkv7_tests --gtest_filter='Cuda.*:Wkv7Cpu.*:FusedOps.*' \
  --gtest_output=json:"$OUT/cuda-tests.json"

say "training step, $CONFIG: ours and the seed's, grad_cp 1 and 0"
for cp in 1 0; do
  ours "ours fused_ops=0 grad_cp=$cp" fused_ops=0 grad_cp=$cp
  ours "ours fused_ops=1 grad_cp=$cp" fused_ops=1 grad_cp=$cp
  if [ $cp = 1 ] && [ -n "$PREBUILD_PID" ]; then
    say "waiting for the background kernel build"; wait "$PREBUILD_PID"
    grep '^{' "$OUT/prebuild.log"
  fi
  python_bench "seed grad_cp=$cp" "$KIT/seed_train_temp" --grad-cp $cp
done

say "RWKV-LM's newest train_temp"
for cp in 1 0; do
  python_bench "rwkv-lm-latest grad_cp=$cp" "$KIT/latest_train_temp" --grad-cp $cp
  python_bench "rwkv-lm-latest @rwkv3 grad_cp=$cp" "$KIT/latest_train_temp" --grad-cp $cp --kernel @rwkv3
done

say "WKV-7: ours beside the seed's kernel"
if [ -d "$KIT/seed_train_temp" ]; then
  limited 300 wkv7-vs-seed python3 tests/gpu/wkv7_vs_seed.py --ops "$B"/librwkv7_ops.so \
    --seed-cuda "$KIT/seed_train_temp/cuda" --golden tests/data/wkv7_cases.pth > "$OUT/wkv7.json"
  cat "$OUT/wkv7.json"
fi

say "the chunked head, head size 128, fine-tuning"
ours "ours fused_ops=1 head_chunk=4096" fused_ops=1 head_chunk=4096
ours "ours fused_ops=0 head_chunk=4096" fused_ops=0 head_chunk=4096
ours "ours fused_ops=1 head_size=128" fused_ops=1 head_size=128
ours "ours fused_ops=0 head_size=128" fused_ops=0 head_size=128
ours "ours state tuning" train_type=state
ours "ours lora" peft=lora
ours "ours lora fused_ops=1" peft=lora fused_ops=1

# The lent machines have one GPU: NCCL is checked by the one-rank test in the CUDA tests
# (Cuda.NcclWorldOfOne*); a multi-rank NCCL run is not in this script.
[ "$GPUS" -gt 1 ] && say "$GPUS GPUs: no multi-rank NCCL run in this script (see docs/gpu-report.md)"

say "profiles: top kernels by GPU time, ours (fused_ops 1 and 0) and the seed's, grad_cp 1"
limited 240 profile-ours "$B"/rwkv7 bench --config "$CONFIG" --steps 5 --warmup 3 --profile "$OUT/profile-ours-fused.json" \
  fused_ops=1 grad_cp=1 > /dev/null
limited 240 profile-ours "$B"/rwkv7 bench --config "$CONFIG" --steps 5 --warmup 3 --profile "$OUT/profile-ours.json" \
  fused_ops=0 grad_cp=1 > /dev/null
if [ -d "$KIT/seed_train_temp" ]; then
  limited 300 profile-seed python3 tests/gpu/run_seed_bench.py --seed-bench "$KIT/seed_bench.py" \
    --profile "$OUT/profile-seed.json" -- --train-temp "$KIT/seed_train_temp" --steps 5 --warmup 3 --grad-cp 1 > /dev/null
fi

say "done"
python3 scripts/gpu-summary.py "$OUT"
