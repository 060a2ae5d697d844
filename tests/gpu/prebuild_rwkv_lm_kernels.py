#!/usr/bin/env python3
"""Compile the CUDA extensions that an RWKV-LM train_temp's src/model.py JIT-compiles at import, all
at once in parallel processes, so that a later import (seed_bench.py, wkv7_vs_seed.py) finds them
built and compiles nothing.

Why: RWKV-LM's newest train_temp compiles eight extensions one after another at import, about 65 s
each; a GPU call has minutes. scripts/gpu-check.sh starts this in the background at the beginning of
the call, beside the project's own build.

How: src/model.py is executed once with torch.utils.cpp_extension.load replaced by a recorder (and
the two module-level calls that need a compiled op, torch.library.register_autograd and
torch.jit.script, replaced by no-ops), under the environment seed_bench.py sets. Each recorded
load() call is then made for real, with the same arguments, in its own process: the extension's
build folder and its ninja file are the ones the later import uses, so that import is a no-op build.

usage: prebuild_rwkv_lm_kernels.py --train-temp DIR [--train-temp DIR2 ...] [--kernel "" --kernel @rwkv3]
       [--dry-run]   (print the recorded calls, compile nothing)
Prints one JSON line per extension: name, ok, seconds (and the error's last line when it failed).
"""
import argparse, json, multiprocessing as mp, os, sys, time, traceback, types


def stub_lightning():
    # src/model.py imports Lightning and DeepSpeed's strategy class for its type hints and base class
    import torch.nn as nn
    pl = types.ModuleType("pytorch_lightning")
    pl.LightningModule = nn.Module
    util = types.ModuleType("pytorch_lightning.utilities")
    util.rank_zero_info = lambda *x, **k: None
    util.rank_zero_only = lambda f: f
    strat = types.ModuleType("pytorch_lightning.strategies")
    strat.DeepSpeedStrategy = type("DeepSpeedStrategy", (), {})
    pl.utilities, pl.strategies = util, strat
    sys.modules.update({"pytorch_lightning": pl, "pytorch_lightning.utilities": util,
                        "pytorch_lightning.strategies": strat})


def environment(kernel):
    # what seed_bench.py sets before it imports src.model (head size 64, bf16, no chunked head)
    return {"RWKV_JIT_ON": "0", "RWKV_MY_TESTING": "x070", "RWKV_HEAD_SIZE": "64", "RWKV_FLOAT_MODE": "bf16",
            "RWKV_CTXLEN": "512", "RWKV_KERNEL": kernel, "RWKV_HEAD_L2WRAP_CE_CHUNK": "0"}


def record_loads(train_temp, kernel):
    """The load() calls src/model.py makes at import, as (name, kwargs), compiling nothing."""
    import torch
    import torch.utils.cpp_extension as ce
    calls = []

    def recorder(*args, **kwargs):
        if args:  # load(name, sources, ...) positionally
            kwargs = dict(zip(["name", "sources"], args), **kwargs)
        calls.append(kwargs)
        return types.SimpleNamespace()  # stands for the Python module a load() may return

    saved = (ce.load, torch.library.register_autograd, torch.jit.script, dict(os.environ), os.getcwd())
    ce.load, torch.library.register_autograd, torch.jit.script = recorder, (lambda *a, **k: None), (lambda f, *a, **k: f)
    try:
        os.environ.update(environment(kernel))
        os.chdir(train_temp)  # the sources are named relative to train_temp
        path = os.path.join(train_temp, "src", "model.py")
        with open(path) as f:
            code = compile(f.read(), path, "exec")
        exec(code, {"__name__": "src.model", "__file__": path})
    finally:
        ce.load, torch.library.register_autograd, torch.jit.script = saved[:3]
        os.environ.clear(); os.environ.update(saved[3]); os.chdir(saved[4])
    return calls


def build_one(job):
    train_temp, kwargs = job
    t0 = time.perf_counter()
    row = {"name": kwargs["name"], "train_temp": train_temp}
    try:
        os.chdir(train_temp)
        from torch.utils.cpp_extension import load
        load(**dict(kwargs, verbose=False))
        row["ok"] = True
    except Exception as e:  # one failed extension must not hide the others' results
        row["ok"] = False
        row["error"] = (traceback.format_exception_only(type(e), e)[-1].strip())[-500:]
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train-temp", action="append", required=True)
    p.add_argument("--kernel", action="append", help='RWKV_KERNEL values to record ("" and/or "@rwkv3")')
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args()
    stub_lightning()
    jobs, seen = [], set()
    for tt in a.train_temp:
        tt = os.path.abspath(tt)
        for kernel in a.kernel or [""]:
            for kw in record_loads(tt, kernel):
                key = (tt, kw["name"])
                if key not in seen:
                    seen.add(key)
                    jobs.append((tt, kw))
    if a.dry_run:
        for tt, kw in jobs:
            print(json.dumps({"name": kw["name"], "train_temp": tt, "sources": kw.get("sources")}), flush=True)
        return 0
    # one process per extension ('spawn': a fresh interpreter, as the later import will be)
    with mp.get_context("spawn").Pool(len(jobs)) as pool:
        rows = pool.map(build_one, jobs)
    for row in rows:
        print(json.dumps(row), flush=True)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
