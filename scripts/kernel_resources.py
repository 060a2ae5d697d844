#!/usr/bin/env python3
"""What ptxas decides for each of our CUDA kernels on sm_90 (H100), measured without a GPU:
registers, spill bytes, stack, static shared memory, and the theoretical occupancy of the launch
configuration our wrappers use. scripts/kernel-resources.sh runs it; docs/benchmarks.md explains it.

  kernel_resources.py [--nvcc PATH] [--md F] [--json F] [--fail-on-spill]
                      [--rwkv-lm DIR] [--rwkv-lm-seed DIR] [--torch-include DIR]

--fail-on-spill: exit 1 when any of our kernels spills registers to local memory (none does since
issue 29's split WKV backward; ctest runs this so that no spill comes back unnoticed). It checks
our kernels only.

--rwkv-lm DIR, --rwkv-lm-seed DIR, --torch-include DIR: RWKV-LM's kernels beside ours, for
comparison; kernel_resources_rwkv_lm.py says how.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

from kernel_resources_rwkv_lm import rwkv_lm_cuda_dir, rwkv_lm_markdown, rwkv_lm_measure
from ptxas_report import ARCH, ROOT, name_rows, occupancy, ptxas_rows

# the build's flags (ops/cuda_kernels/CMakeLists.txt), read from there so the two cannot drift
CMAKE = os.path.join(ROOT, "ops", "cuda_kernels", "CMakeLists.txt")


def sources_and_flags():
    text = open(CMAKE).read()
    sources = re.findall(r"\.\./(\S+\.cu)", text)
    flags = re.search(r"COMPILE_LANGUAGE:CUDA>:([^>]*)>", text).group(1)
    flags = [f for f in re.findall(r'"SHELL:([^"]*)"|(\S+)', flags)]
    out = []
    for shell, plain in flags:
        out += shell.split() if shell else [plain]
    return [os.path.join(ROOT, "ops", s) for s in sources], out


def block_threads(name):
    """The block size our launcher gives this kernel (the default model: head size 64)."""
    common = open(os.path.join(ROOT, "ops", "cuda_common.cuh")).read()
    default = int(re.search(r"kThreadsPerBlock = (\d+)", common).group(1))
    m = re.match(r"rwkv7_cuda::forward_kernel<[^,]+, (\d+)", name)
    if m:
        return int(m.group(1))  # WKV-7 forward: one thread per row of the N x N state
    m = re.match(r"rwkv7_cuda::backward_kernel<[^,]+, (\d+), [^,]+, [^,]+, (\d+)>", name)
    if m:
        return int(m.group(1)) * int(m.group(2))  # WKV-7 backward: kSplit threads per key channel
    if "kk_pre_" in name or "lnx_rkvres_xg_" in name:
        return 64  # one block per (head, rows): C / H threads
    if "ce_" in name:
        ce = open(os.path.join(ROOT, "ops", "cross_entropy_l2wrap", "cross_entropy_l2wrap_kernels.cuh")).read()
        return int(re.search(r"kCeThreads = (\d+)", ce).group(1))
    return default


def measure(nvcc):
    sources, flags = sources_and_flags()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for src in sources:
            cmd = [nvcc, "-std=c++17", *flags, f"-arch={ARCH}", "--resource-usage", "-I", os.path.join(ROOT, "ops"),
                   "-c", src, "-o", os.path.join(tmp, "k.o")]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"kernel_resources: nvcc failed on {src}:\n{r.stderr[-3000:]}")
            rows += ptxas_rows(r.stderr, os.path.relpath(src, ROOT))
    for row in name_rows(rows):
        row["block_threads"] = block_threads(row["kernel"])
        row["blocks_per_sm"], row["occupancy"] = occupancy(row["registers"], row["smem"], row["block_threads"])
    return sorted(rows, key=lambda r: (r["source"], r["kernel"]))


def markdown(rows, theirs=()):
    out = [f"Per kernel, for {ARCH} with the build's flags ({' '.join(sources_and_flags()[1])}); "
           "occupancy: resident warps / 64 on an H100 SM for the block size our launcher uses.", "",
           "| kernel | registers | spill stores / loads (bytes) | stack | smem | block | blocks/SM | occupancy |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(f"| `{r['kernel']}` | {r['registers']} | {r['spill_stores']} / {r['spill_loads']} | {r['stack']} | "
                   f"{r['smem']} | {r['block_threads']} | {r['blocks_per_sm']} | {r['occupancy']:.0%} |")
    if theirs:
        out += ["", *rwkv_lm_markdown(theirs)]
    return "\n".join(out) + "\n"


def refuse_bad_arguments(a):
    """Exits with one line, before a minute of compiling, where the report could not be written or
    would overwrite what it reads (our kernels' sources, their work trees) or itself."""
    outputs = [p for p in (a.md, a.json) if p]
    if len(outputs) == 2 and os.path.realpath(a.md) == os.path.realpath(a.json):
        sys.exit(f"kernel_resources: --md and --json are the same file, {a.md}")
    trees = [t for t in (a.rwkv_lm, a.rwkv_lm_seed) if t]
    for tree in trees:
        rwkv_lm_cuda_dir(tree)
    read = [os.path.realpath(d) for d in (os.path.join(ROOT, "ops"), *trees)]
    for path in outputs:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            sys.exit(f"kernel_resources: cannot write {path}: {folder} is not a writable folder")
        real = os.path.realpath(path)
        if any(real.startswith(d + os.sep) for d in read):
            sys.exit(f"kernel_resources: {path} is inside what it compiles ({', '.join(read)}); write it elsewhere")


def write_whole(path, text):
    """Writes `path` through a temporary file renamed over it: an interrupted run leaves the old one."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nvcc", default=os.environ.get("NVCC", "nvcc"))
    ap.add_argument("--md")
    ap.add_argument("--json")
    ap.add_argument("--fail-on-spill", action="store_true")
    ap.add_argument("--rwkv-lm", help="a work tree of RWKV-LM (its newest train_temp kernels)")
    ap.add_argument("--rwkv-lm-seed", help="a work tree of RWKV-LM at the seed commit 230d32b")
    ap.add_argument("--torch-include", default=os.environ.get("TORCH_INCLUDE"),
                    help="LibTorch's include/ folder, for their .cu files that include torch/extension.h")
    a = ap.parse_args()
    refuse_bad_arguments(a)
    rows = measure(a.nvcc)
    theirs = [r for tree in (a.rwkv_lm_seed, a.rwkv_lm) if tree for r in rwkv_lm_measure(a.nvcc, tree, a.torch_include)]
    if a.md:
        write_whole(a.md, markdown(rows, theirs))
    if a.json:
        write_whole(a.json, json.dumps(rows + theirs, indent=1) + "\n")
    if not a.md and not a.json and not a.fail_on_spill:
        try:
            sys.stdout.write(markdown(rows, theirs))
            sys.stdout.flush()
        except BrokenPipeError:  # a reader that stopped early (| head): nothing left to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
    if a.fail_on_spill:  # ours only: theirs are there to compare with
        bad = [f"{r['kernel']} ({r['source']}): {r['spill_stores']} bytes of spill stores"
               for r in rows if r["spill_stores"] or r["spill_loads"]]
        if bad:
            sys.exit("kernel_resources: our kernels spill:\n  " + "\n  ".join(bad))
        print(f"kernel_resources: {len(rows)} kernels, none spills")


if __name__ == "__main__":
    main()
