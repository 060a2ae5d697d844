#!/usr/bin/env python3
"""Tokenizer speed: `rwkv7 tokenize --vocab` beside the seed's Python RWKV_TOKENIZER on the same
jsonl, on this machine. The seed's class is read from RWKV-LM's RWKV-v7/rwkv_v7_demo.py, which you
fetch yourself (it is not part of this project). Both outputs are checked to be the same tokens.

usage: scripts/bench_tokenizer.py --seed-demo path/to/rwkv_v7_demo.py --jsonl X.jsonl
                                  --vocab rwkv_vocab_v20230424.txt [--rwkv7 build/rwkv7]
"""
import argparse, ast, json, os, subprocess, tempfile, time

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--seed-demo", required=True)
p.add_argument("--jsonl", required=True)
p.add_argument("--vocab", required=True)
p.add_argument("--rwkv7", default="build/rwkv7")
a = p.parse_args()

# Take the RWKV_TOKENIZER class alone out of the demo (the rest loads a model).
src = open(a.seed_demo, encoding="utf-8").read()
cls = next(n for n in ast.parse(src).body if isinstance(n, ast.ClassDef) and n.name == "RWKV_TOKENIZER")
ns = {}
exec(compile(ast.Module(body=[cls], type_ignores=[]), a.seed_demo, "exec"), ns)
tok = ns["RWKV_TOKENIZER"](a.vocab)

texts = [json.loads(l)["text"] for l in open(a.jsonl, encoding="utf-8") if l.strip()]
n_bytes = sum(len(t.encode("utf-8")) for t in texts)
t0 = time.perf_counter()
seed_ids = []
for t in texts:
    seed_ids += tok.encode(t) + [0]
seed_s = time.perf_counter() - t0

with tempfile.TemporaryDirectory() as d:
    out = subprocess.run([a.rwkv7, "tokenize", "--vocab", a.vocab, "--input", a.jsonl, "--output", f"{d}/x"],
                         check=True, capture_output=True, text=True).stdout
    ours_s = float(out.split(" in ")[1].split(" s")[0])  # encode + write, after loading the vocab
    ours_ids = np.fromfile(f"{d}/x.bin", dtype=np.uint16)
assert ours_ids.tolist() == seed_ids, "token ids differ"
print(json.dumps({"documents": len(texts), "bytes": n_bytes, "tokens": len(seed_ids),
                  "seed_python_s": round(seed_s, 3), "rwkv7_s": round(ours_s, 3),
                  "speedup": round(seed_s / ours_s, 1), "cpu": os.cpu_count()}))
