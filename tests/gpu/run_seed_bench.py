#!/usr/bin/env python3
"""Run the device kit's seed_bench.py (the seed's, or RWKV-LM's newest, Python training step) in this
process and complete its JSON row with what the comparison needs and it does not print:

- peak_mem_bytes: torch.cuda.max_memory_allocated() exactly (seed_bench prints GiB to 2 decimals);
- impl gets the kernel variant (RWKV_KERNEL, e.g. "@rwkv3") appended when one is chosen;
- with --profile FILE: the whole run (set-up, warm-up and timed steps) under torch.profiler, and
  FILE gets the top kernels by GPU time per step: their total / (steps + warmup).

usage: run_seed_bench.py --seed-bench .device-kit/seed_bench.py [--profile FILE] -- SEED_BENCH_ARGS...
Prints one JSON line (and seed_bench's own prints, which scripts/gpu-check.sh filters out).
"""
import argparse, contextlib, io, json, runpy, sys

import torch

p = argparse.ArgumentParser()
p.add_argument("--seed-bench", required=True)
p.add_argument("--profile", default="")
p.add_argument("--top", type=int, default=10)
p.add_argument("rest", nargs=argparse.REMAINDER)
a = p.parse_args()
rest = a.rest[1:] if a.rest[:1] == ["--"] else a.rest


def arg(name, default):
    return rest[rest.index(name) + 1] if name in rest else default


def top_kernels(prof, steps, top):
    """The `top` CUDA kernels by total GPU time, per step (ms); on a machine without a GPU, the top
    operators by self CPU time instead (what a dry run can check)."""
    rows = {}
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            ms, n = rows.get(e.name, (0.0, 0))
            rows[e.name] = (ms + e.time_range.elapsed_us() / 1e3, n + 1)
    clock = "gpu"
    if not rows:
        clock = "cpu_self"
        rows = {k.key: (k.self_cpu_time_total / 1e3, k.count) for k in prof.key_averages()}
    total = sum(ms for ms, _ in rows.values()) or 1.0
    best = sorted(rows.items(), key=lambda kv: -kv[1][0])[:top]
    return {"clock": clock, "steps": steps, "ms_per_step": round(total / steps, 3),
            "kernels": [{"name": k, "ms_per_step": round(ms / steps, 3), "share": round(ms / total, 4),
                         "calls_per_step": round(n / steps, 2)} for k, (ms, n) in best]}


captured = io.StringIO()
sys.argv = [a.seed_bench] + rest
profiler = (torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA])
            if a.profile else contextlib.nullcontext())
with profiler as prof, contextlib.redirect_stdout(captured):
    runpy.run_path(a.seed_bench, run_name="__main__")
text = captured.getvalue()
rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
sys.stdout.write("".join(line + "\n" for line in text.splitlines() if not line.startswith("{")))  # its other prints
if not rows:
    sys.exit("run_seed_bench: seed_bench.py printed no JSON row")
row = rows[-1]
if torch.cuda.is_available():
    row["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
kernel = arg("--kernel", "")
if kernel:
    row["impl"] += kernel
if a.profile:
    steps = int(arg("--steps", 20)) + int(arg("--warmup", 5))
    result = dict(top_kernels(prof, steps, a.top), impl=row["impl"], device=row["device"], grad_cp=row["grad_cp"])
    with open(a.profile, "w") as f:
        json.dump(result, f, indent=1)
print(json.dumps(row), flush=True)
