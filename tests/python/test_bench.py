"""`rwkv7 bench`: its JSON row carries what the GPU report compares (impl, device, tokens/s, peak memory
in bytes), and --profile writes the top operators of the timed steps, whose times add up to the
step's."""
import json
import subprocess

from conftest import golden

CONFIG = {"data_file": str(golden("data/lambada_bytes.bin"))[:-4], "vocab_size": 256, "ctx_len": 64,
          "n_layer": 2, "n_embd": 64, "micro_bsz": 4, "magic_prime": 26459, "my_exit_tokens": 1693990,
          "device": "cpu"}


def bench(app, tmp_path, *extra):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("".join(f"{k}: {v}\n" for k, v in CONFIG.items()))
    r = subprocess.run([str(app), "bench", "--config", str(cfg), "--steps", "3", "--warmup", "1", *extra],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1, r.stdout
    return rows[0]


def test_row_has_the_report_fields(app, tmp_path):
    row = bench(app, tmp_path)
    assert row["impl"] == "rwkv7-cpp" and row["device"] == "cpu" and row["backend"] == "cpu"
    assert row["profiled"] is False
    assert row["cpu_cache"] == 1  # the caching CPU allocator is on by default
    assert isinstance(row["peak_mem_bytes"], int) and row["peak_mem_bytes"] > 50 * 2**20  # max RSS
    assert abs(row["peak_mem_bytes"] / 2**30 - row["peak_mem_gib"]) < 1e-3
    assert abs(row["tokens_per_s"] - 4 * 64 / (row["step_ms_median"] / 1e3)) <= 0.01 * row["tokens_per_s"]


def test_profile_lists_the_top_operators(app, tmp_path):
    row = bench(app, tmp_path, "--profile", str(tmp_path / "p.json"))
    assert row["profiled"] is True
    p = json.loads((tmp_path / "p.json").read_text())
    assert p["clock"] == "cpu_self" and p["steps"] == 3
    kernels = p["kernels"]
    assert 5 <= len(kernels) <= 10
    times = [k["ms_per_step"] for k in kernels]
    assert times == sorted(times, reverse=True) and times[-1] > 0
    assert sum(k["share"] for k in kernels) <= 1 + 1e-3
    # self times partition the profiled steps: their total is the step time (the profiler's
    # overhead and the timer's gaps aside), not a sum of nested inclusive times
    assert 0.5 * row["step_ms_median"] <= p["ms_per_step"] <= 1.2 * row["step_ms_median"]
    names = [k["name"] for k in kernels]
    # the WKV-7 scan's backward and forward, and the projections' matmuls, are where a CPU step goes
    assert "rwkv7::wkv7_backward" in names and "rwkv7::wkv7_forward" in names and "aten::mm" in names
    # two layers: one scan forward and one backward per layer and step
    assert next(k for k in kernels if k["name"] == "rwkv7::wkv7_forward")["calls_per_step"] == 2
