"""structure.json: for L12-D768 and L24-D2048 (V 65536, weight decay 0.001) as the seed's RWKV
class builds them, every parameter's name and shape (named_parameters order) and the lr scale and
weight decay of the group its configure_optimizers puts it in.

The models are built on the meta device (shapes only, no memory), falling back to the CPU.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_stub  # noqa: E402

MODELS = [(12, 768), (24, 2048)]
VOCAB = 65536
WEIGHT_DECAY = 0.001


def build(seed, n_layer, n_embd):
    args = seed_stub.make_args(n_layer=n_layer, n_embd=n_embd, vocab_size=VOCAB, ctx_len=512,
                               weight_decay=WEIGHT_DECAY, lr_init=6e-4)
    try:
        with torch.device("meta"):
            model = seed.model.RWKV(args)
    except (NotImplementedError, RuntimeError):
        model = seed.model.RWKV(args)
    seed_stub.attach_trainer(model, seed_stub.FakeTrainer())
    groups = {}
    with seed_stub.quiet():
        opt = model.configure_optimizers()
    for g in seed_stub.group_names(model, opt):
        for n in g["params"]:
            groups[n] = (g["lr_scale"], g["weight_decay"])
    return [{"name": n, "shape": list(p.shape), "lr_scale": groups[n][0],
             "weight_decay": groups[n][1]} for n, p in model.named_parameters()]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", required=True, help="RWKV-LM checkout (or its RWKV-v7/train_temp)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    seed = seed_stub.load_seed(a.seed)
    res = {f"L{L}_D{D}_V{VOCAB}": build(seed, L, D) for L, D in MODELS}
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "structure.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
