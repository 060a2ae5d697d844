"""Times the WKV-7 op's CPU forward and backward (torch.ops.rwkv7.wkv7_forward / _backward) of
one op library on the model's shapes; one JSON row per shape and dtype, the best of --repeat.
Usage: wkv7_cpu_bench.py LIBRARY [--label NAME] [--threads 2] [--repeat 5]"""
import argparse
import json
import time

import torch


def inputs(B, T, H, N, dtype):
    g = torch.Generator().manual_seed(0)
    x = lambda: torch.randn(B, T, H, N, generator=g)
    kk = torch.nn.functional.normalize(x(), dim=-1)
    xs = [x(), -torch.nn.functional.softplus(-x()) - 0.5, x(), x(), -kk, kk * torch.rand(B, T, H, N, generator=g)]
    return [t.to(dtype) for t in xs]


def best_of(repeat, f):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("library")
    ap.add_argument("--label", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.ops.load_library(args.library)
    torch.set_num_threads(args.threads)
    # cpu-small (L4 D128: H 2) and the seed's L12 D768 (H 12) at their ctx and micro_bsz
    for B, T, H, N in [(8, 128, 2, 64), (2, 512, 12, 64)]:
        for dtype in (torch.float32, torch.bfloat16):
            xs = inputs(B, T, H, N, dtype)
            y, saved, sa = torch.ops.rwkv7.wkv7_forward(*xs)
            dy = torch.randn_like(y)
            fwd = best_of(args.repeat, lambda: torch.ops.rwkv7.wkv7_forward(*xs))
            bwd = best_of(args.repeat, lambda: torch.ops.rwkv7.wkv7_backward(*xs, dy, saved, sa))
            flops = B * T * H * N * N * 9  # forward: S a, the update (5 per element), S r
            print(json.dumps({"impl": args.label, "op": "wkv7", "B": B, "T": T, "H": H, "N": N,
                              "dtype": str(dtype)[6:], "threads": args.threads, "forward_ms": round(fwd * 1e3, 3),
                              "backward_ms": round(bwd * 1e3, 3), "forward_gflops": round(flops / fwd / 1e9, 2)}),
                  flush=True)


if __name__ == "__main__":
    main()
