#!/usr/bin/env bash
# The CPU training step against an earlier build and the seed, in one run on this machine (issue 27):
#   - torch.mm of the model's shapes in bf16 and fp32: the cores' matmul peak (cpu_matmul_peak.py);
#   - `rwkv7 bench` of both builds, taking turns, on configs/cpu-small.yaml and on the seed's L12-D768
#     (V65536, ctx 512, micro_bsz 2, grad_cp 0), each in fp32 and bf16 with fused_ops 0 and 1;
#   - the seed's model.py with the naive PyTorch WKV (the GPU kit's seed_bench.py: bf16, as the seed);
#   - processes x threads on both models (1 x 1, 1 x 2, 2 x 1 under torchrun, same global batch);
#   - the profile's operators by self time of the new build's L12-D768 steps (fused_ops 0 and 1).
# Usage: scripts/bench-cpu-speed.sh BEFORE_BUILD SEED_TRAIN_TEMP SEED_BENCH_PY [OUT.jsonl] [PROFILE_PREFIX]
#   BEFORE_BUILD: a build folder of the earlier commit (`git worktree add` + cmake);
#   SEED_TRAIN_TEMP: RWKV-v7/train_temp of BlinkDL/RWKV-LM at 230d32b;
#   SEED_BENCH_PY: seed_bench.py of the project's GPU kit (it times the seed's model.py; kept outside the repository).
set -euo pipefail
USAGE="usage: scripts/bench-cpu-speed.sh BEFORE_BUILD SEED_TRAIN_TEMP SEED_BENCH_PY [OUT.jsonl] [PROFILE_PREFIX]"
BEFORE=${1:?$USAGE}
SEED=${2:?$USAGE}
SEED_BENCH=${3:?$USAGE}
OUT=${4:-docs/bench/cpu-speed.jsonl}
PROFILE=${5:-docs/bench/cpu-speed-profile}
BEFORE=$(realpath "$BEFORE"); SEED=$(realpath "$SEED"); SEED_BENCH=$(realpath "$SEED_BENCH")
OUT=$(realpath -m "$OUT"); PROFILE=$(realpath -m "$PROFILE")
[ -x "$BEFORE/rwkv7" ] || { echo "bench-cpu-speed.sh: BEFORE_BUILD $BEFORE has no rwkv7 binary" >&2; exit 2; }
[ -f "$SEED/src/model.py" ] || { echo "bench-cpu-speed.sh: SEED_TRAIN_TEMP $SEED has no src/model.py" >&2; exit 2; }
[ -f "$SEED_BENCH" ] || { echo "bench-cpu-speed.sh: SEED_BENCH_PY $SEED_BENCH is not a file" >&2; exit 2; }
cd "$(dirname "$0")/.."
PY=.venv/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/rows"
main=(n_layer=12 n_embd=768 vocab_size=65536 ctx_len=512 micro_bsz=2 grad_cp=0 device=cpu magic_prime=26459)
small=(magic_prime=26459)

row() {  # label round bench-args... : one `rwkv7 bench` line, tagged
  local label=$1 round=$2 bin=$3
  shift 3
  "$bin" bench --out "$tmp/step.json" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  $PY -c "import json,sys; r=json.load(open(sys.argv[1])); r['impl']=sys.argv[2]; r['round']=int(sys.argv[3]); print(json.dumps(r))" \
    "$tmp/step.json" "$label" "$round" >>"$tmp/rows"
}
torchrun_row() {  # label processes bench-args...: rank 0's line under torchrun
  local label=$1 procs=$2
  shift 2
  .venv/bin/torchrun --nproc-per-node "$procs" --master-port $((29500 + RANDOM % 400)) --no-python \
    build/rwkv7 bench "$@" 2>/dev/null | tail -1 |
    $PY -c "import json,sys; r=json.loads(sys.stdin.read()); r['impl']=sys.argv[1]; r['round']=1; print(json.dumps(r))" "$label" >>"$tmp/rows"
}

$PY scripts/cpu_matmul_peak.py >>"$tmp/rows"
for round in 1 2; do
  for side in before after; do
    bin=$([ $side = before ] && echo "$BEFORE/rwkv7" || echo build/rwkv7)
    for precision in fp32 bf16; do
      for fused in 0 1; do
        row "$side" $round "$bin" --config configs/cpu-small.yaml --steps 20 "${small[@]}" precision=$precision \
          fused_ops=$fused
      done
    done
    for precision in bf16 fp32; do
      for fused in 0 1; do
        row "$side" $round "$bin" --config configs/cpu-small.yaml --steps 4 --warmup 1 "${main[@]}" \
          precision=$precision fused_ops=$fused
      done
    done
  done
done
# the seed (bf16 only), in its own format; tagged like the rest
for args in "--n-layer 4 --n-embd 128 --vocab 256 --ctx 128 --bsz 8 --steps 20 --warmup 3" \
            "--n-layer 12 --n-embd 768 --vocab 65536 --ctx 512 --bsz 2 --steps 3 --warmup 1"; do
  # shellcheck disable=SC2086
  $PY "$SEED_BENCH" --train-temp "$SEED" $args --grad-cp 0 --device cpu --wkv naive 2>/dev/null | tail -1 |
    $PY -c "import json,sys; r=json.loads(sys.stdin.read()); r['wkv']='naive'; r['precision']='bf16'; r['round']=1; print(json.dumps(r))" >>"$tmp/rows"
done
# processes x threads, the same global batch (1 x 2 is the default: the rows above)
row "after-1x1" 1 build/rwkv7 --config configs/cpu-small.yaml --steps 20 "${small[@]}" threads=1
torchrun_row "after-2x1" 2 --config configs/cpu-small.yaml --steps 20 "${small[@]}" threads=1 micro_bsz=4
row "after-1x1" 1 build/rwkv7 --config configs/cpu-small.yaml --steps 4 --warmup 1 "${main[@]}" precision=bf16 threads=1
torchrun_row "after-2x1" 2 --config configs/cpu-small.yaml --steps 4 --warmup 1 "${main[@]}" precision=bf16 threads=1 micro_bsz=1
# where the time goes, by operator (CPU self time), the new build's L12-D768 steps
for precision in bf16 fp32; do
  for fused in 0 1; do
    build/rwkv7 bench --config configs/cpu-small.yaml --steps 2 --warmup 1 "${main[@]}" precision=$precision \
      fused_ops=$fused --profile "$PROFILE-$precision-fused$fused.json" >/dev/null 2>&1
  done
done
mv "$tmp/rows" "$OUT"
echo "wrote $OUT and $PROFILE-{bf16,fp32}-fused{0,1}.json"
