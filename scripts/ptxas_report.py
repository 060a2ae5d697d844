"""Reading ptxas's report, shared by kernel_resources.py (our kernels) and kernel_resources_rwkv_lm.py
(RWKV-LM's, for comparison): the target (sm_90, H100) and its per-SM limits, the rows of
nvcc --resource-usage's output, their demangled names, and the theoretical occupancy of a block size."""
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = "sm_90"
# H100 SXM, per SM (CUDA occupancy rules for compute capability 9.0)
REGS_PER_SM, MAX_THREADS, MAX_BLOCKS, SMEM_PER_SM, SMEM_RESERVED = 65536, 2048, 32, 228 * 1024, 1024
REG_UNIT = 256  # registers are given to a warp in units of 256


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


def ptxas_rows(stderr, source):
    """The rows of nvcc --resource-usage's report: one per entry function, still mangled."""
    rows, current = [], None
    for line in stderr.splitlines():
        m = re.search(r"Compiling entry function '(\S+)' for", line)
        if m:
            current = {"mangled": m.group(1), "source": source}
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
    return rows


def name_rows(rows):
    """Mangled names to the short demangled ones the tables show ("kernel")."""
    for row, name in zip(rows, demangle([r["mangled"] for r in rows])):
        name = name.replace("(anonymous namespace)::", "").removeprefix("void ")
        name = name[:name.index("(")] if "(" in name else name  # the parameter list
        row["kernel"] = name.replace("__nv_bfloat16", "bf16")
        del row["mangled"]
    return rows
