"""tokenizer_world.json: texts -> ids from the seed's Python world tokenizer (the RWKV_TOKENIZER
class of RWKV-v7/rwkv_v7_demo.py with RWKV-v7/rwkv_vocab_v20230424.txt, at 230d32b).

rwkv_v7_demo.py loads a model when imported, so only the class definition is taken out of it
(by parsing the file) and run as written. The texts are edge cases (whitespace, CJK, emoji,
control bytes, a special-looking string, the empty text) and the first LAMBADA texts, read from
the byte-level binidx with the seed's reader (each document is the text's UTF-8 bytes and a 0).
"""
import argparse
import ast
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_stub  # noqa: E402

TEXTS = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.\n\n",
    "  leading spaces and\ttabs\r\n",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01RWKV \u662f\u4e00\u79cd RNN\u3002",
    "Emoji: \U0001f600\U0001f680 and accents: caf\xe9 na\xefve fa\xe7ade",
    "",
    "User: What is 1+1?\n\nAssistant: 2",
    "<|endoftext|> is not special here",
    "\x00\x01\x7f\xff byte-ish",
]


def seed_tokenizer_class(repo):
    path = repo / "RWKV-v7" / "rwkv_v7_demo.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    cls = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RWKV_TOKENIZER"]
    ns = {}
    exec(compile(ast.Module(body=cls, type_ignores=[]), str(path), "exec"), ns)
    return ns["RWKV_TOKENIZER"]


def lambada_texts(seed, prefix, n):
    data = seed.binidx.MMapIndexedDataset(prefix)
    out = []
    for i in range(n):
        doc = bytes(int(t) for t in data[i])
        assert doc.endswith(b"\0")
        out.append(doc[:-1].decode("utf-8"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", required=True, help="RWKV-LM checkout (the repository root)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lambada", help="binidx prefix of the byte-level LAMBADA data "
                                      "(tests/data/data/lambada_bytes)")
    ap.add_argument("--n-lambada", type=int, default=5)
    a = ap.parse_args()
    repo = seed_stub.find_repo_root(a.seed)
    seed = seed_stub.load_seed(a.seed)
    tok = seed_tokenizer_class(repo)(str(repo / "RWKV-v7" / "rwkv_vocab_v20230424.txt"))
    texts = TEXTS + (lambada_texts(seed, a.lambada, a.n_lambada) if a.lambada else [])
    rows = []
    for t in texts:
        ids = tok.encode(t)
        assert tok.decode(ids) == t
        rows.append({"text": t, "ids": ids})
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "tokenizer_world.json")
    with open(path, "w") as f:
        json.dump({"vocab": "vocab/rwkv_vocab_v20230424.txt", "rows": rows}, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
