#!/usr/bin/env bash
# The demo's training (configs/demo.yaml on data/demo_bytes, made by scripts/demo.sh) with this
# build and an earlier one, in one run on this machine, taking turns (ABBA order, `ROUNDS` pairs):
# a refactor must leave its losses equal and its tokens/s no lower. One JSON row per run: median
# tokens/s over the steps after the first 10, the last loss. Usage:
#   scripts/bench-demo-before-after.sh BEFORE_BUILD [OUT.jsonl] [ROUNDS]
# (BEFORE_BUILD: a folder with the earlier commit's rwkv7 and librwkv7_ops.so.)
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?usage: scripts/bench-demo-before-after.sh BEFORE_BUILD [OUT.jsonl] [ROUNDS]}
OUT=${2:-docs/bench/demo-before-after.jsonl}
ROUNDS=${3:-6}
PY=.venv/bin/python
[ -f data/demo_bytes.bin ] || { echo "data/demo_bytes.bin is missing: run scripts/demo.sh first" >&2; exit 1; }
PRIME=$(build/rwkv7 tokenize --tokenizer bytes --input data/demo.jsonl --output "$(mktemp -d)/t" --ctx-len 128 |
        sed -n 's/^magic_prime for ctx_len 128: //p')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/rows"
for round in $(seq 1 "$ROUNDS"); do
  order=$([ $((round % 2)) = 1 ] && echo "before after" || echo "after before")
  for side in $order; do
    if [ $side = before ]; then bin=("env" "LD_LIBRARY_PATH=$BEFORE" "$BEFORE/rwkv7"); else bin=(build/rwkv7); fi
    "${bin[@]}" train --config configs/demo.yaml magic_prime="$PRIME" proj_dir="$tmp/run" overwrite=1 >/dev/null 2>&1
    $PY - "$tmp/run/metrics.jsonl" "$side" "$round" >>"$tmp/rows" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [r for r in rows if "tokens_per_s" in r]
print(json.dumps({"impl": sys.argv[2], "round": int(sys.argv[3]), "steps": len(steps),
                  "median_tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in steps[10:])),
                  "last_loss": steps[-1]["loss"]}))
PYEOF
    rm -rf "$tmp/run"
  done
done
mv "$tmp/rows" "$OUT"
echo "wrote $OUT"
