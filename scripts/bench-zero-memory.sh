#!/usr/bin/env bash
# Peak memory per rank at each ZeRO stage, on a model whose weights, gradients and Adam moments
# dominate (L12 D768 V65536, 191M parameters, fp32, ctx 64, micro_bsz 1, grad_cp 1: activations
# are small), at 1, 2 and 4 processes under torchrun, one thread each, in one run on this machine.
# Each line is rank 0's `rwkv7 bench` JSON: rank_peak_mem_bytes is every rank's max RSS during the
# steps (the peak of building the model, whole on every rank, is not counted).
#   scripts/bench-zero-memory.sh > docs/bench/zero-memory.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
model=(n_layer=12 n_embd=768 vocab_size=65536 ctx_len=64 micro_bsz=1 grad_cp=1 precision=fp32 threads=1 device=cpu)
port=$((29500 + RANDOM % 400))
run() {  # processes, zero_stage
  port=$((port + 1))
  .venv/bin/torchrun --nproc-per-node "$1" --master-port "$port" --no-python \
    build/rwkv7 bench --config configs/cpu-small.yaml --steps 2 --warmup 1 zero_stage="$2" "${model[@]}" 2>/dev/null | tail -1
}
run 1 0
for world in 2 4; do
  for stage in 0 1 2 3; do run "$world" "$stage"; done
done
