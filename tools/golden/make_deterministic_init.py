"""deterministic_init_L12_D768.pth: the initial values of L12-D768 (V 65536) that do not depend on
the random generator, as the seed makes them: the token-shift mixes x_*, w0, a0, v0, k_k, k_a, r_k
and ffn.x_k from RWKV_Tmix_x070 / RWKV_CMix_x070.__init__, and att.ln_x.weight from
generate_init_weight (the prepare step). fp32; per layer in that order, then the ln_x weights of all layers.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_stub  # noqa: E402

ATT = ["x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "v0", "k_k", "k_a", "r_k"]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", required=True, help="RWKV-LM checkout (or its RWKV-v7/train_temp)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-layer", type=int, default=12)
    ap.add_argument("--n-embd", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=65536)
    a = ap.parse_args()
    torch.set_num_threads(1)
    seed = seed_stub.load_seed(a.seed, float_mode="fp32")
    args = seed_stub.make_args(n_layer=a.n_layer, n_embd=a.n_embd, vocab_size=a.vocab,
                               ctx_len=512)
    with seed_stub.quiet():
        init = seed.model.RWKV(args).generate_init_weight()
    res = {}
    for i in range(a.n_layer):
        for n in ATT:
            res[f"blocks.{i}.att.{n}"] = init[f"blocks.{i}.att.{n}"].clone()
        res[f"blocks.{i}.ffn.x_k"] = init[f"blocks.{i}.ffn.x_k"].clone()
    for i in range(a.n_layer):  # the prepare step's values after the module ones
        res[f"blocks.{i}.att.ln_x.weight"] = init[f"blocks.{i}.att.ln_x.weight"].clone()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, f"deterministic_init_L{a.n_layer}_D{a.n_embd}.pth")
    torch.save(res, path)
    print("wrote", path)


if __name__ == "__main__":
    main()
