#!/usr/bin/env bash
# The demo: real English text from Debian's `fortunes` package -> byte-level binidx -> a small
# RWKV-7 trained on the CPU (a few minutes) -> checkpoints, a loss plot, a sample of its writing.
# Run scripts/setup.sh first (it installs fortunes and gnuplot).
set -euo pipefail
cd "$(dirname "$0")/.."
FORTUNES=${FORTUNES:-/usr/share/games/fortunes}
PY=$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)
mkdir -p data
# One fortune per line of jsonl; the 'definitions' file is held out for validation.
"$PY" - "$FORTUNES" <<'PYEOF'
import json, os, sys
src = sys.argv[1]
train, val = open("data/demo.jsonl", "w"), open("data/demo_val.jsonl", "w")
for name in sorted(os.listdir(src)):
    path = os.path.join(src, name)
    if name.endswith((".dat", ".u8")) or not os.path.isfile(path):
        continue
    text = open(path, encoding="utf-8", errors="replace").read()
    for fortune in text.split("\n%\n"):
        if fortune.strip():
            (val if name == "definitions" else train).write(json.dumps({"text": fortune.strip() + "\n"}) + "\n")
PYEOF
build/rwkv7 tokenize --tokenizer bytes --input data/demo_val.jsonl --output data/demo_val_bytes --ctx-len 128
PRIME=$(build/rwkv7 tokenize --tokenizer bytes --input data/demo.jsonl --output data/demo_bytes --ctx-len 128 \
        | tee /dev/stderr | sed -n 's/^magic_prime for ctx_len 128: //p')
rm -rf out/demo
build/rwkv7 train --config configs/demo.yaml magic_prime="$PRIME"
build/rwkv7 plot --run out/demo
echo "--- the model writes (greedy would repeat; this samples at temperature 0.7):"
build/rwkv7 generate --model out/demo/rwkv-final.pth --tokenizer bytes --prompt "The secret of life is" \
  --max-tokens 200 --temperature 0.7 --top-p 0.9 --seed 1
