#!/usr/bin/env bash
# The fast WKV-7 CPU kernel against an earlier build, in one run on this machine: the op alone
# (scripts/wkv7_cpu_bench.py) and the whole training step (rwkv7 bench) on configs/cpu-small.yaml,
# fp32 and bf16, the two builds taking turns. Usage: scripts/bench-cpu-wkv.sh BEFORE_BUILD [OUT.jsonl]
# (BEFORE_BUILD: a build folder of the earlier commit, e.g. from `git worktree add` + cmake.)
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?usage: scripts/bench-cpu-wkv.sh BEFORE_BUILD [OUT.jsonl]}
OUT=${2:-docs/bench/cpu-wkv-fast.jsonl}
PY=.venv/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/rows"
for round in 1 2; do
  for side in before after; do
    build=$([ $side = before ] && echo "$BEFORE" || echo build)
    $PY scripts/wkv7_cpu_bench.py "$build/librwkv7_ops.so" --label "$side" >>"$tmp/rows"
    for precision in fp32 bf16; do
      "$build/rwkv7" bench --config configs/cpu-small.yaml --steps 20 magic_prime=26459 precision=$precision \
        --out "$tmp/step.json" >/dev/null
      $PY -c "import json,sys; r=json.load(open(sys.argv[1])); r['impl']=sys.argv[2]; r['round']=int(sys.argv[3]); print(json.dumps(r))" \
        "$tmp/step.json" "$side" "$round" >>"$tmp/rows"
    done
  done
done
mv "$tmp/rows" "$OUT"
echo "wrote $OUT"
