"""wkv7_state_passing_cases.pth: WKV-7 with state passing, (r, w, k, v, a, b, s0) -> (y, sT), from
BlinkDL/RWKV-CUDA's own reference RWKV7_STATE_PASSING_CLAMPW_REF
(rwkv7_fast_fused/rwkv7_cuda_benchmark_state_passing.py at 9b17d5d) in float64, with the
gradients of sum(y*dy) + sum(sT*dsT) by torch autograd. r w k v a b y dy and their gradients are
[B, T, H, N]; s0 sT dsT ds0 are [B, H, N, N], laid out S[value i][key j]. Keys: flat `case.field`.

That file builds and runs CUDA kernels when imported, so it is not imported: it is parsed with
`ast`, and only the reference's FunctionDef is compiled and run, in a namespace giving it torch,
F and the globals it reads (B, T, H, N, C, DEVICE='cpu'), with float64 the default dtype (its
`torch.zeros` output buffer is then float64 too).

The reference soft-clamps the decay logits itself (w = -softplus(-w_raw) - 0.5, d = exp(-exp(w)));
our op takes w already clamped. So it is called on w_raw, and the file stores w = clamp(w_raw) and
dw = dL/dw_raw / sigmoid(-w_raw), which is dL/dw: the clamp is elementwise with derivative
sigmoid(-w_raw) (softplus' = sigmoid), so dL/dw_raw = dL/dw * sigmoid(-w_raw) by the chain rule,
and sigmoid(-w_raw) > 1/2 for w_raw < 0, so the division costs only rounding. w_raw is always
recovered from the stored w (softplus inverse, then stepped to a float64 whose clamp is w bit for
bit), for new draws as for --inputs FILE (reuse r w k v a b s0 dy dsT, recompute the rest), so
--inputs reproduces a file exactly.
"""
import argparse
import ast
import builtins
import os

import torch
import torch.nn.functional as F

REF_FILE = "rwkv7_fast_fused/rwkv7_cuda_benchmark_state_passing.py"
REF_NAME = "RWKV7_STATE_PASSING_CLAMPW_REF"
SIZES = ("B", "T", "H", "N", "C")  # globals the reference reads, set per case
# name -> (B, T, H, N); the first is runnable by the CUDA kernels (T % 16 == 0), the second is not
CASES = {"B2_T32_H2_N64": (2, 32, 2, 64),
         "B1_T20_H1_N64": (1, 20, 1, 64),
         "B2_T24_H2_N16": (2, 24, 2, 16),
         "B1_T16_H1_N128": (1, 16, 1, 128)}
INPUTS = ("r", "w", "k", "v", "a", "b")
S0_SCALE = 3.0  # s0 uniform(-3, 3), about the v_i k_j terms (the benchmark: 10)


def load_ref(repo):
    """The reference function alone, run in a namespace of ours."""
    path = os.path.join(repo, REF_FILE)
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == REF_NAME)
    names = [n for n in ast.walk(fn) if isinstance(n, ast.Name)]
    local = {a.arg for a in fn.args.args} | {n.id for n in names if isinstance(n.ctx, ast.Store)}
    ns = {"torch": torch, "F": F, "DEVICE": "cpu"}
    reads = {n.id for n in names if isinstance(n.ctx, ast.Load)} - local - set(dir(builtins))
    assert reads <= set(ns) | set(SIZES), f"{REF_NAME} reads unknown globals {reads}"
    exec(compile(ast.Module(body=[fn], type_ignores=[]), path, "exec"), ns)
    return ns[REF_NAME], ns


def clamp(w_raw):  # the reference's soft clamp
    return -F.softplus(-w_raw) - 0.5


def raw_of(w):
    """A float64 w_raw with clamp(w_raw) == w exactly."""
    x = -torch.log(torch.expm1(-(w + 0.5)))
    for _ in range(64):
        c = clamp(x)
        if torch.equal(c, w):
            return x
        up, down = torch.nextafter(x, x + 1), torch.nextafter(x, x - 1)
        x = torch.where(c < w, up, torch.where(c > w, down, x))
    raise RuntimeError("no float64 w_raw clamps to the stored w")


def draw(B, T, H, N, gen):
    """As the reference's benchmark draws them (r k v uniform(-1,1)*3, w_raw uniform(-6,0),
    a b uniform(-1,1)*2 L2-normalised, here over each head's N rather than all of C)."""
    u = lambda *s: torch.rand(*s, generator=gen, dtype=torch.float64) * 2 - 1
    x = {n: u(B, T, H, N) * 3 for n in ("r", "k", "v")}
    x["w"] = clamp(u(B, T, H, N) * 3 - 3)
    x["a"], x["b"] = (F.normalize(u(B, T, H, N) * 2, dim=-1) for _ in range(2))
    x["s0"] = u(B, H, N, N) * S0_SCALE
    x["dy"] = torch.randn(B, T, H, N, generator=gen, dtype=torch.float64)
    x["dsT"] = torch.randn(B, H, N, N, generator=gen, dtype=torch.float64)
    return x


def run_case(ref, ns, inp):
    B, T, H, N = inp["r"].shape
    ns.update(B=B, T=T, H=H, N=N, C=H * N)
    w_raw = raw_of(inp["w"])
    x = {n: (w_raw if n == "w" else inp[n]).clone().reshape(B, T, H * N).requires_grad_(True)
         for n in INPUTS}
    s0 = inp["s0"].clone().requires_grad_(True)
    y, sT = ref(s0, x["r"], x["w"], x["k"], x["v"], x["a"], x["b"])
    y = y.view(B, T, H, N)
    ((y * inp["dy"]).sum() + (sT * inp["dsT"]).sum()).backward()
    out = {n: inp[n] for n in INPUTS + ("s0", "dy", "dsT")}
    out.update(y=y.detach(), sT=sT.detach())
    for n in INPUTS:
        out["d" + n] = x[n].grad.view(B, T, H, N)
    out["dw"] = out["dw"] / torch.sigmoid(-w_raw)
    out["ds0"] = s0.grad
    assert all(v.dtype == torch.float64 for v in out.values())
    return {k: v.contiguous() for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cuda-repo", required=True, help="RWKV-CUDA checkout (at 9b17d5d)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--inputs", help="take r w k v a b s0 dy dsT from this file")
    ap.add_argument("--rng", type=int, default=17, help="generator seed for new inputs")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    ref, ns = load_ref(a.cuda_repo)
    given = torch.load(a.inputs) if a.inputs else None
    gen = torch.Generator().manual_seed(a.rng)
    res = {}
    for name, (B, T, H, N) in CASES.items():
        inp = ({n: given[f"{name}.{n}"] for n in INPUTS + ("s0", "dy", "dsT")} if given
               else draw(B, T, H, N, gen))
        for k, v in run_case(ref, ns, inp).items():
            res[f"{name}.{k}"] = v
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "wkv7_state_passing_cases.pth")
    torch.save(res, path)
    print("wrote", path)


if __name__ == "__main__":
    main()
