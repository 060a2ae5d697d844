#!/usr/bin/env bash
# Long context's memory and speed against ctx_len, in one run on this machine: `rwkv7 bench` of
# configs/cpu-small.yaml's model (L4 D128, one sample per step, fp32) unchunked, and with
# chunk_ctx 512 under bptt full and truncated, at each ctx_len. Each row is its own process, so
# its peak memory (max RSS) is that of its own steps. ctx_len values where the unchunked step does
# not fit in memory are given only chunked (SKIP_UNCHUNKED_ABOVE).
#   scripts/bench-long-context.sh [OUT.jsonl]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/bench/long-context.jsonl}
CTX=${CTX:-"2048 8192 32768 65536 131072 262144"}
SKIP_UNCHUNKED_ABOVE=${SKIP_UNCHUNKED_ABOVE:-131072}  # 262144 unchunked needs about 24 GiB
CHUNK=${CHUNK:-512}
PY=.venv/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/rows"
for ctx in $CTX; do
  for mode in unchunked full truncated; do
    if [ $mode = unchunked ]; then
      [ "$ctx" -gt "$SKIP_UNCHUNKED_ABOVE" ] && continue
      keys=()
    else
      keys=(chunk_ctx=$CHUNK bptt=$mode)
    fi
    build/rwkv7 bench --config configs/cpu-small.yaml --steps 2 --warmup 1 magic_prime=26459 micro_bsz=1 \
      ctx_len=$ctx "${keys[@]}" --out "$tmp/step.json" >/dev/null
    $PY -c "import json,sys; r=json.load(open(sys.argv[1])); r.update(ctx_len=int(sys.argv[2]), mode=sys.argv[3], chunk_ctx=int(sys.argv[4])); print(json.dumps(r))" \
      "$tmp/step.json" "$ctx" "$mode" "$([ $mode = unchunked ] && echo 0 || echo $CHUNK)" >>"$tmp/rows"
    tail -1 "$tmp/rows" | $PY -c "import json,sys; r=json.loads(sys.stdin.read()); print(r['ctx_len'], r['mode'], round(r['peak_mem_gib'],3), 'GiB', r['tokens_per_s'], 'tok/s')"
  done
done
mv "$tmp/rows" "$OUT"
echo "wrote $OUT"
