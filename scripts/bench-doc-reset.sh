#!/usr/bin/env bash
# The cost of doc_reset: 1 (packed documents' restarts in the WKV kernels) beside the same step
# without it, in one run on the same machine: the demo's model, random tokens (a token 0 about
# every 256 tokens: one restart in about two 128-token samples), fp32 on the CPU.
#   scripts/bench-doc-reset.sh > docs/bench/doc-reset.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
for round in 1 2; do
  for reset in 0 1; do
    build/rwkv7 bench --config configs/demo.yaml --steps 30 doc_reset=$reset 2>/dev/null | tail -1
  done
done
