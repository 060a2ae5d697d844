"""The CPU's matmul peak on a model's own shapes: torch.mm of every linear layer's forward shape
(tokens x in -> out) in bf16 and fp32, best of --repeat, and the rate of the whole mix (each shape
weighted by how often a layer runs it). One JSON row per dtype. The step's GFLOP/s is read against
this figure: it is what the same cores reach on the same matrices with nothing else to do.
Usage: cpu_matmul_peak.py [--tokens 1024] [--n-layer 12] [--n-embd 768] [--vocab 65536] [--threads 2]"""
import argparse
import json
import os
import time

import torch


def best_seconds(f, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def cpu_model():
    """The processor's name as /proc/cpuinfo gives it: figures of different machines differ."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=1024)  # micro_bsz 2 x ctx 512
    ap.add_argument("--n-layer", type=int, default=12)
    ap.add_argument("--n-embd", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=65536)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    C, M = args.n_embd, args.tokens
    L = args.n_layer
    # (in, out, times per model): r k v o per layer; the ffn's key and value; the head
    shapes = [(C, C, 4 * L), (C, 4 * C, L), (4 * C, C, L), (C, args.vocab, 1)]
    for dtype in (torch.bfloat16, torch.float32):
        rows, mix_flops, mix_s = [], 0.0, 0.0
        for k, n, times in shapes:
            a, b = torch.randn(M, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            torch.mm(a, b)  # warm up (oneDNN builds its kernel on the first call)
            s = best_seconds(lambda: torch.mm(a, b), args.repeat)
            flops = 2.0 * M * k * n
            rows.append({"m": M, "k": k, "n": n, "gflops": round(flops / s / 1e9, 1)})
            mix_flops += times * flops
            mix_s += times * s
        print(json.dumps({"impl": "torch.mm", "dtype": str(dtype).replace("torch.", ""), "threads": args.threads,
                          "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__, "mix_gflops": round(mix_flops / mix_s / 1e9, 1), "shapes": rows}))


if __name__ == "__main__":
    main()
