"""scripts/gpu_model.py, the roofline model of one training step on an H100: its rows on a tiny shape
keep the invariants the model's tables promise (the fused step moves fewer bytes in fewer launches,
FLOPs follow the batch, the matmul FLOPs are the shapes' own), bad arguments are refused in one
line, and docs/bench/gpu-model-h100.json is what the script writes now."""
import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_model.py"
TINY = ["--n-layer", "2", "--n-embd", "128", "--head-size", "64", "--vocab", "256", "--ctx-len", "32",
        "--micro-bsz", "2,4", "--grad-cp", "1,0", "--head-chunk", "16"]
REQUIRED = {"impl", "modelled_step_ms", "bytes", "flops", "launches", "n_layer", "n_embd", "head_size", "vocab",
            "ctx_len", "micro_bsz", "grad_cp", "fused_ops", "head_chunk", "precision", "device"}


def run(args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_model") / "tiny.json"
    r = run(TINY + ["--out", str(out)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # with --out, nothing on stdout
    return json.loads(out.read_text())


def module():
    spec = importlib.util.spec_from_file_location("gpu_model", SCRIPT)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def pick(rows, impl, bsz, cp):
    found = [r for r in rows if r["impl"] == impl and r["micro_bsz"] == bsz and r["grad_cp"] == cp]
    assert len(found) == 1, (impl, bsz, cp)
    return found[0]


def test_every_row_has_the_required_keys_and_positive_totals(tiny):
    rows = tiny["rows"]
    assert len(rows) == 2 * 2 * 4  # micro_bsz x grad_cp x (ours fused 0, fused 1, head_chunk, seed)
    for r in rows:
        assert REQUIRED <= set(r), REQUIRED - set(r)
        assert r["modelled_step_ms"] > 0 and r["bytes"] > 0 and r["flops"] > 0 and r["launches"] > 0
        assert r["modelled_step_ms"] == pytest.approx(r["roofline_ms"] + r["launch_overhead_ms"], abs=2e-3)
        assert r["launches"] == sum(p["launches"] for p in r["phases"].values())
        assert r["launches"] == sum(k["launches"] for k in r["by_kind"].values())
        assert r["bytes"] == pytest.approx(sum(k["bytes"] for k in r["by_kind"].values()), abs=len(r["by_kind"]))


def test_the_fused_step_launches_fewer_kernels_and_moves_fewer_bytes(tiny):
    for bsz in (2, 4):
        for cp in (0, 1):
            f0, f1 = pick(tiny["rows"], "ours-fused0", bsz, cp), pick(tiny["rows"], "ours-fused1", bsz, cp)
            assert f1["launches"] < f0["launches"]
            assert f1["bytes"] < f0["bytes"]
            assert f1["modelled_step_ms"] < f0["modelled_step_ms"]
            chunked = pick(tiny["rows"], "ours-fused1-head_chunk16", bsz, cp)
            assert chunked["launches"] > f1["launches"]  # a few kernels more per chunk


def test_doubling_micro_bsz_about_doubles_the_flops(tiny):
    for impl in ("ours-fused0", "ours-fused1", "ours-fused1-head_chunk16", "seed-230d32b"):
        for cp in (0, 1):
            small, big = pick(tiny["rows"], impl, 2, cp), pick(tiny["rows"], impl, 4, cp)
            # all but the optimizer's per-parameter work scales with the tokens
            assert 1.9 < big["flops"] / small["flops"] <= 2.0, (impl, cp)
            assert big["by_kind"]["mm"]["flops"] == 2 * small["by_kind"]["mm"]["flops"]


def test_matmul_flops_are_the_shapes_own(tiny):
    m = module()
    k = m.mm("x", 3, 5, 7)
    assert (k.flops, k.bytes) == (2 * 3 * 5 * 7, 2 * (3 * 5 + 5 * 7 + 3 * 7))
    assert [b.flops for b in m.mm_bwd("x", 3, 5, 7)] == [2 * 3 * 5 * 7] * 2
    # the tiny shape by hand: C 128, F 512, V 256; LoRA widths max(32, round(f sqrt(128) / 32) * 32):
    # decay (f 2.5) 32, a (2.5) 32, value residual (1.7) 32, gate (5.0) 64
    L, C, F, V, T = 2, 128, 512, 256, 32
    lora = 32 + 32 + 32 + 64
    for bsz in (2, 4):
        M = bsz * T
        per_layer = 2 * M * (4 * C * C + 2 * C * lora + 2 * C * F)
        blocks = L * per_layer - 2 * M * 2 * C * 32  # layer 0 has no value-residual matmuls
        head = 2 * M * C * V
        for cp in (0, 1):
            # forward once (twice for the blocks with grad_cp), backward twice the forward
            want = (1 + cp + 2) * blocks + 3 * head
            for impl in ("ours-fused0", "ours-fused1", "ours-fused1-head_chunk16", "seed-230d32b"):
                assert pick(tiny["rows"], impl, bsz, cp)["by_kind"]["mm"]["flops"] == want, (impl, bsz, cp)


def test_kernels_per_layer_are_the_counted_ones():
    """The per-layer tables' lengths: the composite's as torch.profiler counted them on a Python
    transcription of the composite block (see the script's docstring), the fused path's by hand
    (its backward: 80 per layer > 0 while the lerps were six selects, 62 since they are one unbind)."""
    m = module()
    s = m.Shape(n_layer=12, n_embd=768, head_size=64, vocab=65536, ctx_len=512, micro_bsz=16)
    counts = {(f, layer): tuple(len(ks) for ks in m.layer_kernels(s, layer, f)) for f in (0, 1) for layer in (0, 1)}
    assert counts == {(0, 0): (67, 130), (0, 1): (73, 139), (1, 0): (27, 56), (1, 1): (29, 62)}


def test_grad_cp_runs_the_blocks_forward_again(tiny):
    for impl in ("ours-fused0", "ours-fused1", "seed-230d32b"):
        cp0, cp1 = pick(tiny["rows"], impl, 2, 0), pick(tiny["rows"], impl, 2, 1)
        assert cp1["by_kind"]["wkv"]["launches"] == 2 * 3 and cp0["by_kind"]["wkv"]["launches"] == 2 * 2
        assert cp1["launches"] > cp0["launches"] and cp1["modelled_step_ms"] > cp0["modelled_step_ms"]
        assert cp1["phases"]["forward"] == cp0["phases"]["forward"]


def test_ratios_follow_the_rows(tiny):
    assert len(tiny["ratios"]) == 4
    for q in tiny["ratios"]:
        ms = lambda impl: pick(tiny["rows"], impl, q["micro_bsz"], q["grad_cp"])["modelled_step_ms"]
        assert q["seed_over_ours_fused1"] == pytest.approx(ms("seed-230d32b") / ms("ours-fused1"), abs=1e-3)
        assert q["seed_over_ours_fused0"] == pytest.approx(ms("seed-230d32b") / ms("ours-fused0"), abs=1e-3)
        assert q["ours_fused0_over_fused1"] == pytest.approx(ms("ours-fused0") / ms("ours-fused1"), abs=1e-3)


def test_launch_overhead_is_a_constant_per_kernel(tmp_path):
    r = run(TINY + ["--launch-us", "0"])
    assert r.returncode == 0, r.stderr
    for row in json.loads(r.stdout)["rows"]:
        assert row["launch_overhead_ms"] == 0 and row["modelled_step_ms"] == row["roofline_ms"]


@pytest.mark.parametrize("args, says", [
    (["--ctx-len", "30"], "--ctx-len must be a multiple of 16"),
    (["--n-embd", "100"], "--n-embd (100) must be a multiple of --head-size (64)"),
    (["--micro-bsz", "16,x"], "is not a comma-separated list of integers"),
    (["--grad-cp", "2"], "--grad-cp values must be 0 or 1"),
    (["--head-size", "32"], "--head-size must be 64 or 128"),
    (["--head-chunk", "0"], "--head-chunk must be >= 1"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_arguments_are_refused_in_one_line(args, says):
    r = run(args)
    assert r.returncode != 0 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert says in r.stderr and r.stderr.startswith("gpu_model.py: ")


def test_the_committed_h100_rows_are_what_the_script_writes():
    r = run([])
    assert r.returncode == 0, r.stderr
    committed = (ROOT / "docs" / "bench" / "gpu-model-h100.json").read_text()
    assert r.stdout == committed, "rerun: python3 scripts/gpu_model.py --out docs/bench/gpu-model-h100.json"
    assert run([]).stdout == r.stdout  # deterministic
