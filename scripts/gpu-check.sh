#!/usr/bin/env bash
# The project's GPU checks, in one device call (docs/gpu-report.md):
#   source .device-kit/gpu-env.sh && scripts/gpu-check.sh "$OUT" 2>&1 | tee "$OUT/log.txt"
# Builds with CUDA into build-gpu/, runs the CUDA tests (and the CPU op tests beside them),
# compares the WKV-7 kernel with the seed's, and benchmarks the seed's MiniPile config
# (L12-D768, V65536, ctx 512, micro_bsz 16, bf16) with grad_cp 1 and 0, ours and the seed's;
# then ours with fused_ops: 1, with head_chunk, and with head size 128 (issue 14's measurements).
# Writes: cuda-tests.json, wkv7.json, bench.jsonl (plus the caller's log.txt) into OUT.
set -uo pipefail
OUT=${1:?usage: scripts/gpu-check.sh OUT_DIR}
KIT=$PWD/.device-kit
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}" -DCMAKE_PREFIX_PATH="$CMAKE_PREFIX_PATH" \
  -DRWKV7_PYTHON="$(command -v python3)" -DPython3_EXECUTABLE="$(command -v python3)" || exit 1
cmake --build build-gpu -j"$(nproc)" || exit 1

echo "== CUDA tests"
build-gpu/tests/rwkv7_tests --gtest_filter='Cuda.*:Wkv7Cpu.*:FusedOps.*' --gtest_output=json:"$OUT/cuda-tests.json"

echo "== WKV-7: ours beside the seed's kernel"
python3 tests/gpu/wkv7_vs_seed.py --ops build-gpu/librwkv7_ops.so --seed-cuda "$KIT/seed_train_temp/cuda" \
  --golden tests/data/wkv7_cases.pth | tee "$OUT/wkv7.json"

echo "== training step benchmark, MiniPile config"
: > "$OUT/bench.jsonl"
for cp in 1 0; do
  build-gpu/rwkv7 bench --config configs/minipile-L12-D768.yaml --steps 20 --warmup 5 grad_cp=$cp \
    | tee -a "$OUT/bench.jsonl"
  python3 "$KIT/seed_bench.py" --train-temp "$KIT/seed_train_temp" --grad-cp $cp | tee -a "$OUT/bench.jsonl"
done

echo "== the fused step (fused_ops: 1), the chunked head, head size 128"
for extra in "fused_ops=1" "fused_ops=1 grad_cp=0" "fused_ops=1 head_chunk=4096" "fused_ops=0 head_chunk=4096" \
             "fused_ops=1 head_size=128" "fused_ops=0 head_size=128"; do
  # shellcheck disable=SC2086
  build-gpu/rwkv7 bench --config configs/minipile-L12-D768.yaml --steps 20 --warmup 5 $extra | tee -a "$OUT/bench.jsonl"
done

echo "== fine-tuning: state tuning and LoRA beside full training (the same model, bf16)"
for extra in "train_type=state" "peft=lora" "peft=lora fused_ops=1"; do
  # shellcheck disable=SC2086
  build-gpu/rwkv7 bench --config configs/minipile-L12-D768.yaml --steps 20 --warmup 5 $extra | tee -a "$OUT/bench.jsonl"
done
