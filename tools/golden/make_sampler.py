"""sampler.json: the token offset the seed's MyDataset.__getitem__ reads for (data size, ctx_len,
magic_prime, epoch, idx, rank, world size), on MiniPile's numbers (1498226207 tokens, ctx 512,
magic_prime 2926181), where factor*ii^3 needs more than 64 bits.

The dataset's __init__ (which opens the data) is skipped and its reader replaced by one that
records the offset asked for, so __getitem__ itself runs unchanged without MiniPile on disk.
Python's integers are exact, so the offsets are the seed's exact ones.
"""
import argparse
import json
import os
import random
import sys
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_stub  # noqa: E402

MINIPILE = dict(data_tokens=1498226207, ctx_len=512, magic_prime=2926181, epoch_samples=40320)
# (epoch, idx, rank, world_size): the first/last samples of epochs, the last epoch, multi-GPU
FIXED = [(0, 0, 0, 1), (0, 1, 0, 1), (0, 40319, 0, 1), (1, 0, 0, 1), (71, 40319, 0, 1),
         (72, 0, 0, 1), (0, 5, 1, 8), (3, 77, 7, 8), (70, 5039, 3, 8)]


class _Recorder:
    def get(self, idx, offset, length):
        self.offset = offset
        return np.zeros(length, dtype=np.uint16)


def offset(seed, row):
    assert seed.dataset.is_prime(row["magic_prime"]) and row["magic_prime"] % 3 == 2
    ds = seed.dataset.MyDataset.__new__(seed.dataset.MyDataset)
    ds.args = types.SimpleNamespace(ctx_len=row["ctx_len"], magic_prime=row["magic_prime"])
    ds.samples_per_epoch = row["epoch_samples"]
    ds.global_rank, ds.real_epoch, ds.world_size = row["rank"], row["epoch"], row["world_size"]
    ds.data = _Recorder()
    ds[row["idx"]]
    return int(ds.data.offset)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", required=True, help="RWKV-LM checkout (or its RWKV-v7/train_temp)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--random-rows", type=int, default=20, help="extra random (epoch, idx) rows")
    ap.add_argument("--rng", type=int, default=0)
    ap.add_argument("--rows-from", help="recompute the inputs of an existing sampler.json")
    a = ap.parse_args()
    seed = seed_stub.load_seed(a.seed)
    if a.rows_from:
        keys = [dict((k, r[k]) for k in r if k != "offset")
                for r in json.load(open(a.rows_from))["rows"]]
    else:
        rnd = random.Random(a.rng)
        picks = FIXED + [(rnd.randrange(72), rnd.randrange(40320), 0, 1)
                         for _ in range(a.random_rows)]
        keys = [dict(MINIPILE, epoch=e, idx=i, rank=r, world_size=w) for e, i, r, w in picks]
    rows = [dict(k, offset=offset(seed, k)) for k in keys]
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "sampler.json")
    with open(path, "w") as f:
        json.dump({"formula_source": "seed dataset.py __getitem__", "rows": rows}, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
