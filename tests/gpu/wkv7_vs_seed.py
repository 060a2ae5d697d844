#!/usr/bin/env python3
"""WKV-7 on a GPU: this project's CUDA op beside the seed's kernel (RWKV-LM train_temp cuda/,
compiled here with the seed's flags), in one process on one device.

- error of y and the six gradients against the fp64 golden cases, bf16 inputs (both kernels)
  and fp32 (ours);
- forward+backward time (median of 20 after 5 warm-up) at B16 T512 H12 and B8 T4096 H64.
Prints one JSON object.

usage: wkv7_vs_seed.py --ops build-gpu/librwkv7_ops.so --seed-cuda .device-kit/seed_train_temp/cuda
                       [--golden tests/data/wkv7_cases.pth]
"""
import argparse, json, os, statistics, time

import torch

p = argparse.ArgumentParser()
p.add_argument("--ops", required=True)
p.add_argument("--seed-cuda", required=True)
p.add_argument("--golden", default="tests/data/wkv7_cases.pth")
a = p.parse_args()

torch.ops.load_library(a.ops)
from torch.utils.cpp_extension import load

# realpath: the very source paths seed_bench.py's import uses (it compiles from its cwd, a physical
# path), so the extension that prebuild_rwkv_lm_kernels.py built is reused, not rebuilt
seed_cuda = os.path.realpath(a.seed_cuda)
load(name="wind_backstepping", sources=[f"{seed_cuda}/wkv7_cuda.cu", f"{seed_cuda}/wkv7_op.cpp"],
     is_python_module=False, verbose=False,
     extra_cuda_cflags=["-res-usage", "-D_C_=64", "-D_CHUNK_LEN_=16", "--use_fast_math", "-O3",
                        "-Xptxas -O3", "--extra-device-vectorization"])


def seed_fwd_bwd(r, w, k, v, aa, b, dy):
    B, T, H, C = w.shape
    y = torch.empty_like(v)
    s = torch.empty(B, H, T // 16, C, C, dtype=torch.float32, device=w.device)
    sa = torch.empty(B, T, H, C, dtype=torch.float32, device=w.device)
    torch.ops.wind_backstepping.forward(w, r, k, v, aa, b, y, s, sa)
    g = [torch.empty_like(x) for x in (w, r, k, v, aa, b)]
    torch.ops.wind_backstepping.backward(w, r, k, v, aa, b, dy, s, sa, *g)
    dw, dr, dk, dv, da, db = g
    return y, [dr, dw, dk, dv, da, db]


def ours_fwd_bwd(r, w, k, v, aa, b, dy):
    xs = [x.detach().requires_grad_(True) for x in (r, w, k, v, aa, b)]
    y = torch.ops.rwkv7.wkv7(*xs)
    y.backward(dy)
    return y.detach(), [x.grad for x in xs]


def rel(x, ref):
    ref = ref.double()
    return ((x.double().cpu() - ref).abs().max() / ref.abs().max()).item()


out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "errors": {}, "timing_ms": {}}
cases = torch.load(a.golden)
names = ["y", "dr", "dw", "dk", "dv", "da", "db"]
for impl, fn, dtype in [("seed_bf16", seed_fwd_bwd, torch.bfloat16), ("ours_bf16", ours_fwd_bwd, torch.bfloat16),
                        ("ours_fp32", ours_fwd_bwd, torch.float32)]:
    worst = {}
    for cname, c in cases.items():
        if c["r"].shape[1] % 16:
            continue
        xs = [c[k].to("cuda", dtype).contiguous() for k in "rwkvab"]
        y, g = fn(*xs, c["dy"].to("cuda", dtype).contiguous())
        for n, t in zip(names, [y] + g):
            worst[n] = max(worst.get(n, 0.0), rel(t, c[n]))
    out["errors"][impl] = worst

torch.manual_seed(0)
for B, T, H in [(16, 512, 12), (8, 4096, 64)]:
    shape = (B, T, H, 64)
    r, k, v = [torch.randn(shape, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    w = (-0.6 - 3 * torch.rand(shape, device="cuda")).to(torch.bfloat16)
    kk = torch.nn.functional.normalize(torch.randn(shape, device="cuda"), dim=-1)
    aa, b = (-kk).to(torch.bfloat16), (kk * torch.rand(shape, device="cuda")).to(torch.bfloat16)
    dy = torch.randn(shape, device="cuda", dtype=torch.bfloat16)
    for impl, fn in [("seed_bf16", seed_fwd_bwd), ("ours_bf16", ours_fwd_bwd)]:
        times = []
        for i in range(25):
            torch.cuda.synchronize(); t0 = time.perf_counter()
            fn(r, w, k, v, aa, b, dy)
            torch.cuda.synchronize(); t1 = time.perf_counter()
            if i >= 5:
                times.append((t1 - t0) * 1e3)
        out["timing_ms"][f"{impl} B{B} T{T} H{H}"] = round(statistics.median(times), 3)
print(json.dumps(out))
