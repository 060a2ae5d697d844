#!/usr/bin/env python3
"""Run the device kit's seed_bench.py (the seed's, or RWKV-LM's newest, Python training step) in this
process and complete its JSON row with what the comparison needs and it does not print:

- peak_mem_bytes: torch.cuda.max_memory_allocated() exactly (seed_bench prints GiB to 2 decimals);
- impl gets the kernel variant (RWKV_KERNEL, e.g. "@rwkv3") appended when one is chosen;
- with --profile FILE: the timed steps (those after the warm-up) under torch.profiler, and FILE gets
  the top kernels by GPU time per step, as `rwkv7 bench --profile` writes them for ours. The
  profiler starts when the optimizer finishes the last warm-up step (a global optimizer-step hook).

usage: run_seed_bench.py --seed-bench .device-kit/seed_bench.py [--profile FILE] -- SEED_BENCH_ARGS...
Prints seed_bench's own lines as they come, except its JSON row, then the completed row.
"""
import argparse, contextlib, io, json, os, runpy, sys

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

p = argparse.ArgumentParser()
p.add_argument("--seed-bench", required=True)
p.add_argument("--profile", default="")
p.add_argument("--top", type=int, default=10)
p.add_argument("rest", nargs=argparse.REMAINDER)
a = p.parse_args()
rest = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
profile_path = os.path.abspath(a.profile) if a.profile else ""  # seed_bench changes the cwd


def arg(name, default):
    return rest[rest.index(name) + 1] if name in rest else default


steps, warmup = int(arg("--steps", 20)), int(arg("--warmup", 5))


class PassThrough(io.TextIOBase):
    """seed_bench's stdout: JSON lines kept for later, everything else passed on at once (so a
    timeout still leaves its output in the log)."""

    def __init__(self):
        self.rows, self.partial = [], ""

    def write(self, text):
        self.partial += text
        *lines, self.partial = self.partial.split("\n")
        for line in lines:
            if line.startswith("{"):
                self.rows.append(json.loads(line))
            else:
                sys.__stdout__.write(line + "\n")
                sys.__stdout__.flush()
        return len(text)


def top_kernels(prof, top):
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


prof = None
if profile_path:
    if warmup < 1:
        sys.exit("run_seed_bench: --profile needs --warmup 1 or more (profiling starts after the warm-up)")
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    prof = torch.profiler.profile(activities=activities)
    optimizer_steps = [0]

    def start_after_warmup(optimizer, args, kwargs):
        optimizer_steps[0] += 1
        if optimizer_steps[0] == warmup:
            prof.start()

    register_optimizer_step_post_hook(start_after_warmup)

out = PassThrough()
sys.argv = [a.seed_bench] + rest
with contextlib.redirect_stdout(out):
    runpy.run_path(a.seed_bench, run_name="__main__")
if prof is not None:
    prof.stop()
if not out.rows:
    sys.exit("run_seed_bench: seed_bench.py printed no JSON row")
row = out.rows[-1]
if torch.cuda.is_available():
    row["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
kernel = arg("--kernel", "")
if kernel:
    row["impl"] += kernel
if prof is not None:
    result = dict(top_kernels(prof, a.top), impl=row["impl"], device=row["device"], grad_cp=row["grad_cp"])
    with open(profile_path, "w") as f:
        json.dump(result, f, indent=1)
print(json.dumps(row), flush=True)
