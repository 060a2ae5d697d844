"""RWKV-LM's training kernels beside ours, for comparison: their numbers, never their code.
kernel_resources.py calls it for --rwkv-lm DIR and --rwkv-lm-seed DIR, work trees of RWKV-LM (the
newest, and one at the seed commit 230d32b). Every .cu of their RWKV-v7/train_temp/cuda/ is compiled
the way their loader builds it and gets rows marked "project": "RWKV-LM".
A .cu that includes torch/extension.h needs LibTorch's headers: --torch-include (or $TORCH_INCLUDE)
names torch's include/ folder, else the one of an importable torch (this Python's, or .venv's);
without them the file is listed as skipped.
"""
import ast
import math
import os
import re
import subprocess
import sys
import tempfile

from ptxas_report import ARCH, ROOT, name_rows, occupancy, ptxas_rows

# Where their training kernels live in a work tree of RWKV-LM.
RWKV_LM_CUDA = "RWKV-v7/train_temp/cuda"
# What their loader (RWKV-v7/train_temp/src/model.py) passes for every .cu besides -res-usage
# and the -D values below; the same as our build's flags.
RWKV_LM_FLAGS = ["--use_fast_math", "-O3", "-Xptxas", "-O3", "--extra-device-vectorization"]
# torch.utils.cpp_extension.load(), which builds them, adds these to every .cu (COMMON_NVCC_FLAGS).
TORCH_EXTENSION_FLAGS = ["-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
                         "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__",
                         "--expt-relaxed-constexpr"]
# The macros their .cu files leave to the loader, with the loader's values: the head size (_N_,
# or _C_ in wkv7_cuda*.cu; model.py asserts 64; the fp32 demo's 16 is not a model's) and the
# chunk of the saved states (16).
RWKV_LM_MACROS = {"_N_": 64, "_C_": 64, "_CHUNK_LEN_": 16}


def rwkv_lm_defines(text):
    """The -D values a .cu gets: the loader's macros the file uses and does not #define itself.
    A file written for one head size says so in a static_assert, and is given that size."""
    defines = {}
    for macro, value in RWKV_LM_MACROS.items():
        if re.search(rf"\b{macro}\b", text) and not re.search(rf"#\s*define\s+{macro}\b", text):
            pinned = re.search(rf"static_assert\s*\(\s*{macro}\s*==\s*(\d+)", text)
            defines[macro] = int(pinned.group(1)) if pinned else value
    return defines


def split_top(text, sep=","):
    """text split at the separators that are not inside (), <> or []."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "(<[") - (ch in ")>]")
        if ch == sep and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return parts + [cur.strip()] if cur.strip() else parts


def kernel_launch(text, base):
    """Where `base` is launched in text: (offset, template arguments written at the launch,
    the block argument of <<<grid, block, ...>>>), or None."""
    m = re.search(rf"\b{re.escape(base)}\s*(<[^<>;]*>)?\s*<<<(.*?)>>>", text, re.S)
    if not m:
        return None
    templ = split_top(m.group(1)[1:-1]) if m.group(1) else []
    args = split_top(m.group(2))
    return m.start(), templ, args[1] if len(args) > 1 else None


class LaunchValue:
    """The integer value of a C expression of a .cu at an offset of it, as far as the text
    settles it: names are looked up in env (the -D values, template arguments), then in the
    nearest declaration before that offset (`int x = ...;`, `constexpr int x = ...;`,
    `dim3 x(...);`, a #define); a call of one of the file's functions without arguments is
    what it returns. None for a value decided at run time."""
    DECL = (r"\b(?:int|int64_t|unsigned|size_t|auto)\s+{0}\s*=\s*(?P<v>[^;]+);"
            r"|\bdim3\s+{0}\s*(?P<d>\([^;]*\))\s*;|#\s*define\s+{0}[ \t]+(?P<m>[^\n]+)")
    OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a // b if b else None}

    def __init__(self, text, env):
        self.text, self.env = text, env

    def of(self, expr, pos, depth=0):
        if depth > 8:  # a definition that refers to itself
            return None
        expr = re.sub(r"static_cast<[^<>]*>", "", expr)
        expr = re.sub(r"\bdim3\s*\(", "_dim3(", re.sub(r"\b(\d+)[uUlL]+\b", r"\1", expr))
        try:
            tree = ast.parse(expr.strip(), mode="eval").body
        except SyntaxError:  # C that is not plain arithmetic: a run-time value
            return None
        return self.node(tree, pos, depth)

    def node(self, n, pos, depth):
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.Name):
            return self.name(n.id, pos, depth)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            if n.func.id == "_dim3":  # a block of x * y * z threads
                dims = [self.node(a, pos, depth) for a in n.args]
                return None if None in dims else math.prod(dims)
            return None if n.args else self.returned(n.func.id, depth)
        if isinstance(n, ast.BinOp) and type(n.op) in self.OPS:
            a, b = self.node(n.left, pos, depth), self.node(n.right, pos, depth)
            return None if a is None or b is None else self.OPS[type(n.op)](a, b)
        return None

    def name(self, name, pos, depth):
        if name in self.env:
            return self.of(str(self.env[name]), pos, depth + 1)
        found = list(re.finditer(self.DECL.format(re.escape(name)), self.text[:pos]))
        if not found:
            return None
        m = found[-1]  # the nearest: a launcher's local `threads` before a file-wide constant
        return self.of(m.group("v") or m.group("m") or "dim3" + m.group("d"), m.start(), depth + 1)

    def returned(self, function, depth):
        d = re.search(rf"\b{re.escape(function)}\s*\(\s*\)\s*\{{", self.text)
        ret = d and re.compile(r"\breturn\s+([^;]+);").search(self.text, d.end())
        return self.of(ret.group(1), ret.start(), depth + 1) if ret else None


def rwkv_lm_block_threads(text, kernel, defines):
    """The block size their launcher gives `kernel` (demangled, e.g. `backward_kernel<64>`):
    the block argument of its <<<>>> launch in the .cu, with the template arguments written
    there bound to those of the compiled instance. None where it is a run-time value."""
    base, _, targs = kernel.partition("<")
    launch = kernel_launch(text, base)
    if launch is None or launch[2] is None:
        return None
    pos, written, block = launch
    env = dict(defines)
    for name, val in zip(written, split_top(targs[:-1]) if targs else []):
        if re.fullmatch(r"[A-Za-z_]\w*", name) and re.fullmatch(r"-?\d+", val):
            env[name] = int(val)
    return LaunchValue(text, env).of(block, pos)


def torch_includes(explicit):
    """-I folders for a .cu that includes torch/extension.h: LibTorch's include/ (explicit, or
    that of an importable torch) and Python's headers, which torch/extension.h pulls in."""
    import sysconfig
    include = explicit
    if not include:
        probe = "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'include'))"
        for py in (sys.executable, os.path.join(ROOT, ".venv", "bin", "python")):
            r = subprocess.run([py, "-c", probe], capture_output=True, text=True) if os.path.exists(py) else None
            if r and r.returncode == 0:
                include = r.stdout.strip()
                break
    if not include or not os.path.exists(os.path.join(include, "torch", "extension.h")):
        return None
    return [include, os.path.join(include, "torch", "csrc", "api", "include"), sysconfig.get_paths()["include"]]


def checkout_label(path):
    """`RWKV-LM <short commit>` of a work tree; its folder name where it is not the top of a git
    work tree (a copy, or a folder inside some other repository, whose commit would be wrong)."""
    r = subprocess.run(["git", "-C", path, "rev-parse", "--show-toplevel", "--short=7", "HEAD"],
                       capture_output=True, text=True)
    lines = r.stdout.split() if r.returncode == 0 else []
    if len(lines) == 2 and os.path.realpath(lines[0]) == os.path.realpath(path):
        return f"RWKV-LM {lines[1]}"
    return f"RWKV-LM {os.path.basename(os.path.realpath(path))}"


def rwkv_lm_cuda_dir(checkout):
    """The folder of their kernels in a work tree of RWKV-LM; exits with one line where it is not one."""
    cuda = os.path.join(checkout, RWKV_LM_CUDA)
    if not os.path.isdir(cuda):
        sys.exit(f"kernel_resources: {checkout} has no {RWKV_LM_CUDA}/ (give a work tree of RWKV-LM)")
    return cuda


def rwkv_lm_measure(nvcc, checkout, torch_include):
    """Rows for every .cu of a work tree's RWKV-v7/train_temp/cuda/, "project": "RWKV-LM";
    a file that cannot be compiled is one row with "skipped" and the reason."""
    label, cuda = checkout_label(checkout), rwkv_lm_cuda_dir(checkout)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(f for f in os.listdir(cuda) if f.endswith(".cu")):
            rows += rwkv_lm_file(nvcc, os.path.join(cuda, name), f"{label} {RWKV_LM_CUDA}/{name}", torch_include, tmp)
    return sorted(rows, key=lambda r: (r["source"], r.get("kernel", "")))


def rwkv_lm_file(nvcc, path, source, torch_include, tmp):
    """One of their .cu files compiled as their loader does, one row per kernel."""
    text = open(path).read()
    defines = rwkv_lm_defines(text)
    dflags = [f"-D{k}={v}" for k, v in defines.items()]
    includes = []
    if re.search(r"#\s*include\s*<(torch|ATen|c10)/", text):
        includes = torch_includes(torch_include)
        if includes is None:
            return [{"project": "RWKV-LM", "source": source,
                     "skipped": "includes LibTorch headers; none found (--torch-include)"}]
    # -cubin: ptxas's numbers are the device code's; the host half (torch's headers) would only cost time
    cmd = [nvcc, "-std=c++17", *TORCH_EXTENSION_FLAGS, *RWKV_LM_FLAGS, *dflags, f"-arch={ARCH}", "--resource-usage",
           *[a for d in includes for a in ("-I", d)], "-cubin", path, "-o", os.path.join(tmp, "k.cubin")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:  # their file, not ours: note it and go on
        err = [line for line in r.stderr.splitlines() if "error" in line][:1] or [f"nvcc exited {r.returncode}"]
        return [{"project": "RWKV-LM", "source": source, "skipped": err[0].replace(path, os.path.basename(path)).strip()}]
    rows = name_rows(ptxas_rows(r.stderr, source))
    for row in rows:
        row["project"], row["defines"] = "RWKV-LM", " ".join(dflags)
        row["block_threads"] = rwkv_lm_block_threads(text, row["kernel"], defines)
        row["blocks_per_sm"], row["occupancy"] = (occupancy(row["registers"], row["smem"], row["block_threads"])
                                                  if row["block_threads"] else (None, None))
    return rows


def rwkv_lm_markdown(theirs):
    """The second table: RWKV-LM's kernels, their compile flags, and the files left out."""
    out = ["## RWKV-LM's kernels (for comparison)", "",
           f"Every `.cu` of their `{RWKV_LM_CUDA}/`, for {ARCH} with their loader's flags "
           f"(`{' '.join(RWKV_LM_FLAGS)}`), those torch's extension builder adds "
           f"(`{' '.join(TORCH_EXTENSION_FLAGS)}`) and the per-file `-D` values listed (LibTorch's headers "
           "where a file includes them); block: their launcher's default (? where it is decided at run time).", "",
           "| source | kernel | registers | spill stores / loads (bytes) | stack | smem | block | blocks/SM | occupancy |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in (r for r in theirs if "skipped" not in r):
        out.append(f"| {short_source(r['source'])} | `{r['kernel']}` | {r['registers']} | {r['spill_stores']} / "
                   f"{r['spill_loads']} | {r['stack']} | {r['smem']} | {or_unknown(r['block_threads'])} | "
                   f"{or_unknown(r['blocks_per_sm'])} | {or_unknown(r['occupancy'], '{:.0%}')} |")
    out += ["", "`-D` per file:", ""]
    for source, r in {r["source"]: r for r in theirs}.items():  # one line a file, in table order
        what = f"skipped: {r['skipped']}" if "skipped" in r else f"`{r['defines'] or '(none)'}`"
        out.append(f"- {short_source(source)}: {what}")
    return out


def short_source(source):
    """`RWKV-LM 524481d RWKV-v7/train_temp/cuda/x.cu` as the table shows it: `524481d x.cu`."""
    return source.removeprefix("RWKV-LM ").replace(f"{RWKV_LM_CUDA}/", "")


def or_unknown(value, fmt="{}"):
    return "?" if value is None else fmt.format(value)
