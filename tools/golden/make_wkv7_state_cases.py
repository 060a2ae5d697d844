"""wkv7_state_cases.pth: WKV-7 with a trainable initial state, through RWKV-PEFT's own wrapper
(RUN_RWKV7_STATE in rwkvt/operator/rwkvop.py, `--op fla`, train type `state`) over the plain
recurrence in float64 (peft_stub.py).

RWKV-PEFT hands its time_state [H, N, N] to the op as the same initial state for every sample,
so `ds` (the gradient of sum(y*dy) with respect to it) is summed over the batch. Keys are flat,
`case.field`. --inputs FILE reuses the inputs of an existing file and recomputes the rest.
"""
import argparse
import importlib
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peft_stub  # noqa: E402
from make_wkv7_cases import INPUTS, draw  # noqa: E402

# name -> (B, T, H, decay shift, scale of the initial state)
CASES = {"B2_T32_H2": (2, 32, 2, 0.0, 0.5),
         "B1_T20_H1": (1, 20, 1, 0.0, 0.5),
         "B2_T16_H1_slowdecay_bigstate": (2, 16, 1, -3.0, 3.0)}


def run_case(op, inp):
    B, T, H, N = inp["r"].shape
    x = {n: inp[n].clone().reshape(B, T, H * N).requires_grad_(True) for n in INPUTS}
    s = inp["s"].clone().requires_grad_(True)
    y, _ = op.RUN_RWKV7_STATE(x["r"], x["k"], x["v"], x["w"], x["a"], x["b"], s)
    y = y.view(B, T, H, N)
    (y * inp["dy"]).sum().backward()
    out = {n: inp[n] for n in INPUTS}
    out["y"] = y.detach()
    out["dy"] = inp["dy"]
    for n in INPUTS:
        out["d" + n] = x[n].grad.view(B, T, H, N)
    out["s"] = inp["s"]
    out["ds"] = s.grad
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--peft", required=True, help="RWKV-PEFT checkout")
    ap.add_argument("--out", required=True)
    ap.add_argument("--inputs", help="take r w k v a b dy s from this wkv7_state_cases.pth")
    ap.add_argument("--rng", type=int, default=11)
    a = ap.parse_args()
    torch.set_num_threads(1)
    peft_stub.load_peft(a.peft, train_type="state")
    peft_stub.seed_stub._WKV_DTYPE = torch.float64
    op = importlib.import_module("rwkvt.operator.rwkvop")
    given = torch.load(a.inputs) if a.inputs else None
    gen = torch.Generator().manual_seed(a.rng)
    res = {}
    for name, (B, T, H, shift, sscale) in CASES.items():
        if given:
            inp = {n: given[f"{name}.{n}"] for n in INPUTS + ("dy", "s")}
        else:
            inp = draw(B, T, H, shift, gen)
            inp["s"] = torch.randn(H, 64, 64, generator=gen, dtype=torch.float64) * sscale
        for k, v in run_case(op, inp).items():
            res[f"{name}.{k}"] = v
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "wkv7_state_cases.pth")
    torch.save(res, path)
    print("wrote", path)


if __name__ == "__main__":
    main()
