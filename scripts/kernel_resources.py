#!/usr/bin/env python3
"""What ptxas decides for each of our CUDA kernels on sm_90 (H100), measured without a GPU:
registers, spill bytes, stack, static shared memory, and the theoretical occupancy of the launch
configuration our wrappers use. scripts/kernel-resources.sh runs it; docs/benchmarks.md explains it.

  kernel_resources.py [--nvcc PATH] [--md F] [--json F] [--known-spills F]

--known-spills F: fail (exit 1) when a kernel spills that F does not list, or spills more than
F says (F: JSON {kernel: spill store bytes}). The list is what is left to fix (issue 29), so that
no new spill comes in unnoticed.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the build's flags (ops/cuda_kernels/CMakeLists.txt), read from there so the two cannot drift
CMAKE = os.path.join(ROOT, "ops", "cuda_kernels", "CMakeLists.txt")
ARCH = "sm_90"
# H100 SXM, per SM (CUDA occupancy rules for compute capability 9.0)
REGS_PER_SM, MAX_THREADS, MAX_BLOCKS, SMEM_PER_SM, SMEM_RESERVED = 65536, 2048, 32, 228 * 1024, 1024
REG_UNIT = 256  # registers are given to a warp in units of 256


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
    m = re.match(r"rwkv7_cuda::(forward|backward)_kernel<[^,]+, (\d+)", name)
    if m:
        return int(m.group(2))  # WKV-7: one thread per row of the N x N state
    if "kk_pre_" in name or "lnx_rkvres_xg_" in name:
        return 64  # one block per (head, rows): C / H threads
    if "ce_" in name:
        ce = open(os.path.join(ROOT, "ops", "cross_entropy_l2wrap", "cross_entropy_l2wrap_kernels.cuh")).read()
        return int(re.search(r"kCeThreads = (\d+)", ce).group(1))
    return default


def occupancy(regs, smem, threads):
    warps = (threads + 31) // 32
    regs_per_warp = -(-regs * 32 // REG_UNIT) * REG_UNIT
    by_regs = (REGS_PER_SM // regs_per_warp) // warps if regs_per_warp else MAX_BLOCKS
    by_smem = SMEM_PER_SM // (smem + SMEM_RESERVED)
    by_threads = MAX_THREADS // threads
    blocks = min(by_regs, by_smem, by_threads, MAX_BLOCKS)
    return blocks, blocks * warps / (MAX_THREADS // 32)


def demangle(names):
    r = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True)
    return r.stdout.splitlines()


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
            current = None
            for line in r.stderr.splitlines():
                m = re.search(r"Compiling entry function '(\S+)' for", line)
                if m:
                    current = {"mangled": m.group(1), "source": os.path.relpath(src, ROOT)}
                    rows.append(current)
                    continue
                if current is None:
                    continue
                m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
                if m:
                    current["stack"], current["spill_stores"], current["spill_loads"] = map(int, m.groups())
                m = re.search(r"Used (\d+) registers", line)
                if m:
                    current["registers"] = int(m.group(1))
                    s = re.search(r"(\d+) bytes smem", line)
                    current["smem"] = int(s.group(1)) if s else 0
    for row, name in zip(rows, demangle([r["mangled"] for r in rows])):
        name = name.replace("(anonymous namespace)::", "").removeprefix("void ")
        name = name[:name.index("(")] if "(" in name else name  # the parameter list
        row["kernel"] = name.replace("__nv_bfloat16", "bf16")
        row["block_threads"] = block_threads(row["kernel"])
        row["blocks_per_sm"], row["occupancy"] = occupancy(row["registers"], row["smem"], row["block_threads"])
        del row["mangled"]
    return sorted(rows, key=lambda r: (r["source"], r["kernel"]))


def markdown(rows):
    out = [f"Per kernel, for {ARCH} with the build's flags ({' '.join(sources_and_flags()[1])}); "
           "occupancy: resident warps / 64 on an H100 SM for the block size our launcher uses.", "",
           "| kernel | registers | spill stores / loads (bytes) | stack | smem | block | blocks/SM | occupancy |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(f"| `{r['kernel']}` | {r['registers']} | {r['spill_stores']} / {r['spill_loads']} | {r['stack']} | "
                   f"{r['smem']} | {r['block_threads']} | {r['blocks_per_sm']} | {r['occupancy']:.0%} |")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nvcc", default=os.environ.get("NVCC", "nvcc"))
    ap.add_argument("--md")
    ap.add_argument("--json")
    ap.add_argument("--known-spills")
    a = ap.parse_args()
    rows = measure(a.nvcc)
    if a.md:
        open(a.md, "w").write(markdown(rows))
    if a.json:
        open(a.json, "w").write(json.dumps(rows, indent=1) + "\n")
    if not a.md and not a.json and not a.known_spills:
        sys.stdout.write(markdown(rows))
    if a.known_spills:
        known = json.load(open(a.known_spills))
        bad = [f"{r['kernel']}: {r['spill_stores']} bytes of spill stores (allowed {known.get(r['kernel'], 0)})"
               for r in rows if r["spill_stores"] > known.get(r["kernel"], 0)]
        if bad:
            sys.exit("kernel_resources: new or larger spills:\n  " + "\n  ".join(bad))
        print(f"kernel_resources: {len(rows)} kernels, no spill beyond {a.known_spills}")


if __name__ == "__main__":
    main()
