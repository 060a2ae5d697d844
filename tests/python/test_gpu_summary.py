"""scripts/gpu-summary.py, which turns a GPU call's files into the report's tables, on files made up
here: the ratios it prints are the ones the rows imply, a missed target says by how much, and a call
cut short (no tests file, a timed-out step) still gets a summary."""
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def row(impl, cp, tokens_per_s, mem_bytes, **extra):
    r = {"impl": impl, "device": "NVIDIA H200", "grad_cp": cp, "tokens_per_s": tokens_per_s,
         "step_ms_median": round(16 * 512 / tokens_per_s * 1e3, 2) if tokens_per_s else None, "peak_mem_bytes": mem_bytes,
         "n_layer": 12, "n_embd": 768, "vocab": 65536}
    r.update(extra)
    return r


def summarise(tmp_path, bench, steps=(), tests=None):
    (tmp_path / "gpus.txt").write_text("NVIDIA H200, 143771 MiB, 570.00\n")
    (tmp_path / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in bench) + "not json\n")
    (tmp_path / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    if tests is not None:
        (tmp_path / "cuda-tests.json").write_text(json.dumps(tests))
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu-summary.py"), str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert (tmp_path / "summary.md").read_text().strip() == out.strip()
    return out


def target_line(text, ratio_name, cp):
    lines = [l for l in text.splitlines() if l.startswith(f"| {ratio_name} | {cp} |")]
    assert len(lines) == 1, (ratio_name, cp, text)
    return lines[0]


def test_ratios_and_verdicts(tmp_path):
    ours = dict(flops_per_token=1e9, peak_tflops=989, fused_ops=0, head_size=64, head_chunk=0,
                train_type="none", peft="none")
    bench = [
        row("rwkv7-cpp", 1, 150000, 10 * 2**30, **ours),
        row("rwkv7-cpp", 1, 260000, 9 * 2**30, **dict(ours, fused_ops=1)),
        row("rwkv7-cpp", 1, 400000, 9 * 2**30, **dict(ours, fused_ops=1, head_size=128)),  # not comparable
        row("seed-230d32b", 1, 100000, 12 * 2**30),
        row("rwkv-lm-latest", 1, 200000, 11 * 2**30),
        row("rwkv-lm-latest@rwkv3", 1, 240000, 11 * 2**30),
    ]
    text = summarise(tmp_path, bench, tests={"tests": 3, "time": "1s", "testsuites": []})
    assert "| 1.50 | >= 1.3 | met |" in target_line(text, "fused_ops 0 / seed-230d32b", 1)
    # 2.6 >= 2.0; the head-size-128 row must not stand in for the comparable one
    assert "| 2.60 | >= 2.0 | met |" in target_line(text, "fused_ops 1 / seed-230d32b", 1)
    # against the newest trainer's best variant (@rwkv3): 260000 / 240000
    assert "| 1.08 | >= 1.0 | met |" in target_line(text, "fused_ops 1 / rwkv-lm-latest@rwkv3", 1)
    assert "| 0.83 | <= 1 | met |" in target_line(text, "peak memory, fused_ops 0 / seed", 1)
    # the seed's MFU from our FLOP count for its shape: 1e9 * 1e5 / 989e12
    seed_row = [l for l in text.splitlines() if l.startswith("| seed-230d32b |")][0]
    assert seed_row.endswith("| 100000 | 81.92 | 12.00 | 10.1% |"), seed_row
    assert "not measured" in target_line(text, "fused_ops 0 / seed-230d32b", 0)


def test_missed_target_says_by_how_much(tmp_path):
    ours = dict(fused_ops=1, head_size=64, head_chunk=0, train_type="none", peft="none")
    bench = [row("rwkv7-cpp", 0, 150000, 13 * 2**30, **ours), row("seed-230d32b", 0, 100000, 12 * 2**30)]
    text = summarise(tmp_path, bench, steps=[{"step": "build", "rc": 0, "seconds": 90},
                                              {"step": "cuda-tests", "rc": 124, "seconds": 420}])
    # 1.5 where 2.0 is asked: missed by 25%; memory 13/12 GiB: missed by 8%
    assert "| 1.50 | >= 2.0 | missed by 25% |" in target_line(text, "fused_ops 1 / seed-230d32b", 0)
    assert "| 1.08 | <= 1 | missed by 8% |" in target_line(text, "peak memory, fused_ops 1 / seed", 0)
    assert "| cuda-tests | timed out | 420 |" in text
    assert "not run, or cut short (no cuda-tests.json)" in text


def test_failed_and_skipped_tests_are_listed(tmp_path):
    tests = {"tests": 3, "time": "2.5s", "testsuites": [{"name": "Cuda", "testsuite": [
        {"name": "Wkv7GoldenFloat32", "result": "COMPLETED"},
        {"name": "Wkv7GoldenBFloat16", "result": "COMPLETED", "failures": [{"failure": "x.cpp:62\nExpected <= 0.02"}]},
        {"name": "NcclWorldOfOneCollectives", "result": "SKIPPED"}]}]}
    text = summarise(tmp_path, [], tests=tests)
    assert "3 tests, 1 failed, 1 skipped (2.5s)" in text
    assert "- FAILED Cuda.Wkv7GoldenBFloat16: x.cpp:62" in text
    assert "- skipped Cuda.NcclWorldOfOneCollectives" in text


def test_partial_and_broken_files_still_give_a_summary(tmp_path):
    # a state-tuning row (not comparable), a seed row cut short (no tokens/s), a row with 0
    bench = [row("rwkv7-cpp", 1, 150000, 10 * 2**30, fused_ops=0, train_type="state", peft="none"),
             {"impl": "seed-230d32b", "grad_cp": 1}, row("rwkv-lm-latest", 1, 0, None)]
    (tmp_path / "profile-ours.json").write_text("{not json")
    text = summarise(tmp_path, bench, steps=[{"step": "profile-ours", "rc": "skipped", "seconds": 0}])
    assert "| profile-ours | skipped | 0 |" in text
    assert "not measured" in target_line(text, "fused_ops 0 / seed-230d32b", 1)
    assert "(a section could not be read: JSONDecodeError" in text


def test_measured_steps_beside_the_model(tmp_path):
    model = json.loads((ROOT / "docs" / "bench" / "gpu-model-h100.json").read_text())["rows"]
    want = [m for m in model if m["impl"] == "ours-fused1" and m["micro_bsz"] == 16 and m["grad_cp"] == 1][0]
    shape = dict(bsz=16, ctx=512, head_size=64, head_chunk=0, train_type="none", peft="none")
    bench = [row("rwkv7-cpp", 1, 160000, 9 * 2**30, **dict(shape, fused_ops=1)),
             row("rwkv7-cpp", 1, 160000, 9 * 2**30, **dict(shape, fused_ops=1, bsz=4)),  # no model row
             row("seed-230d32b", 1, 100000, 12 * 2**30, bsz=16, ctx=512)]
    text = summarise(tmp_path, bench)
    lines = [l for l in text.splitlines() if l.startswith("| rwkv7-cpp | ours-fused1 |")]
    measured = round(16 * 512 / 160000 * 1e3, 2)
    assert lines == [f"| rwkv7-cpp | ours-fused1 | 16 | 1 | {measured} | {want['modelled_step_ms']} |"
                     f" {measured / want['modelled_step_ms']:.2f} |"], text
    assert [l for l in text.splitlines() if l.startswith("| seed-230d32b | seed-230d32b | 16 | 1 |")], text
