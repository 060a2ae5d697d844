#!/usr/bin/env bash
# fused_ops 0 against 1 on the CPU with this build, taking turns (ABBA order, `ROUNDS` pairs), in
# one run on this machine: configs/cpu-small.yaml and the seed's L12-D768 (V65536, ctx 512,
# micro_bsz 2, grad_cp 0), each in fp32 and bf16. The 2-core VM's step varies by up to 20% from one
# run to the next, so the answer is the median of several turns, not one pair. One `rwkv7 bench`
# JSON row per run, tagged with its round. Usage: scripts/bench-fused-cpu.sh [OUT.jsonl] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/bench/cpu-fused-ab.jsonl}
ROUNDS=${2:-4}
PY=.venv/bin/python
[ -x build/rwkv7 ] || { echo "bench-fused-cpu.sh: build/rwkv7 is missing: build first" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/rows"
main=(n_layer=12 n_embd=768 vocab_size=65536 ctx_len=512 micro_bsz=2 grad_cp=0 device=cpu magic_prime=26459)
for model in small main; do
  for precision in fp32 bf16; do
    if [ $model = small ]; then args=(--steps 20 magic_prime=26459); else args=(--steps 4 --warmup 1 "${main[@]}"); fi
    for round in $(seq 1 "$ROUNDS"); do
      order=$([ $((round % 2)) = 1 ] && echo "0 1" || echo "1 0")
      for fused in $order; do
        build/rwkv7 bench --config configs/cpu-small.yaml --out "$tmp/step.json" "${args[@]}" precision=$precision \
          fused_ops=$fused >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
        $PY -c "import json,sys; r=json.load(open(sys.argv[1])); r['model']=sys.argv[2]; r['round']=int(sys.argv[3]); print(json.dumps(r))" \
          "$tmp/step.json" $model "$round" >>"$tmp/rows"
      done
    done
  done
done
mv "$tmp/rows" "$OUT"
echo "wrote $OUT"
