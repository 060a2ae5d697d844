"""wkv7_cases.pth: the seed's WKV-7 call (RUN_CUDA_RWKV7g) in float64 on the CPU, its CUDA op
replaced by the plain recurrence (seed_stub.py), with y and the six gradients of sum(y*dy).

Inputs are drawn like the model draws them (w a log-log decay below -0.5, a = -kk, b = kk*gate
with kk unit-norm per head), so the cases sit where the trained model works. --inputs FILE reuses
the inputs of an existing file (for example the committed one) and recomputes everything else.
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_stub  # noqa: E402

# name -> (B, T, H, shift of the decay logits: more negative = slower decay)
CASES = {"B2_T32_H2": (2, 32, 2, 0.0),
         "B1_T20_H1": (1, 20, 1, 0.0),
         "B1_T64_H1_slowdecay": (1, 64, 1, -3.0)}
INPUTS = ("r", "w", "k", "v", "a", "b")


def draw(B, T, H, shift, gen):
    N = 64
    rnd = lambda: torch.randn(B, T, H, N, generator=gen, dtype=torch.float64)
    r, k, v = rnd(), rnd() * 0.7, rnd() * 1.2
    w = -F.softplus(-(rnd() + shift)) - 0.5          # the model's soft clamp to (-inf, -0.5)
    kk = F.normalize(rnd(), dim=-1)
    gate = torch.sigmoid(rnd())
    return dict(r=r, w=w, k=k, v=v, a=-kk, b=kk * gate, dy=rnd())


def run_case(seed, inp):
    B, T, H, N = inp["r"].shape
    x = {n: inp[n].clone().reshape(B, T, H * N).requires_grad_(True) for n in INPUTS}
    # the seed's wrapper: (r, w, k, v, a, b) as [B, T, H*N]
    y = seed.model.RUN_CUDA_RWKV7g(x["r"], x["w"], x["k"], x["v"], x["a"], x["b"])
    y = y.view(B, T, H, N)
    (y * inp["dy"]).sum().backward()
    out = {n: inp[n] for n in INPUTS}
    out["y"] = y.detach()
    out["dy"] = inp["dy"]
    for n in INPUTS:
        out["d" + n] = x[n].grad.view(B, T, H, N)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", required=True, help="RWKV-LM checkout (or its RWKV-v7/train_temp)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--inputs", help="take r w k v a b dy from this wkv7_cases.pth")
    ap.add_argument("--rng", type=int, default=7, help="generator seed for new inputs")
    a = ap.parse_args()
    torch.set_num_threads(1)
    seed = seed_stub.load_seed(a.seed, wkv_dtype=torch.float64)
    given = torch.load(a.inputs) if a.inputs else None
    gen = torch.Generator().manual_seed(a.rng)
    res = {}
    for name, (B, T, H, shift) in CASES.items():
        inp = ({n: given[name][n] for n in INPUTS + ("dy",)} if given
               else draw(B, T, H, shift, gen))
        res[name] = run_case(seed, inp)
    os.makedirs(a.out, exist_ok=True)
    torch.save(res, os.path.join(a.out, "wkv7_cases.pth"))
    print("wrote", os.path.join(a.out, "wkv7_cases.pth"))


if __name__ == "__main__":
    main()
