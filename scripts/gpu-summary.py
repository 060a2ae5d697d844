#!/usr/bin/env python3
"""The summary of one scripts/gpu-check.sh call: what ran and how it ended, the CUDA tests' totals, the
benchmark rows with the issue's targets checked (ours / seed tokens/s at equal grad_cp: at least 1.3
with fused_ops 0 and 2.0 with fused_ops 1; ours at least RWKV-LM's newest; peak memory at most the
seed's), the WKV-7 kernel comparison and the profiles' top kernels. Printed as markdown (the GPU
report's tables) and written to OUT/summary.md. It reads whatever the call left, so a call cut
short still gets a summary of what it measured.

usage: scripts/gpu-summary.py OUT_DIR
"""
import json, pathlib, sys

MODEL = pathlib.Path(__file__).resolve().parent.parent / "docs" / "bench" / "gpu-model-h100.json"

TARGETS = [  # (our fused_ops, the other impl, least ratio of tokens/s)
    (0, "seed-230d32b", 1.3),
    (1, "seed-230d32b", 2.0),
    (1, "rwkv-lm-latest", 1.0),
]


def json_lines(path):
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def gib(row):
    b = row.get("peak_mem_bytes")
    return b / 2**30 if b else row.get("peak_mem_gib")


def speed(row):
    """tokens/s, or None where the row has none (a failed or partial run)"""
    t = row.get("tokens_per_s")
    return t if isinstance(t, (int, float)) and t > 0 else None


def base_config(row):
    """Rows comparable with the seed's: its MiniPile shape, no fine-tuning, no extra key."""
    return (row.get("train_type", "none") in ("", "none", "full") and row.get("peft", "none") in ("", "none")
            and row.get("head_size", 64) == 64 and row.get("head_chunk", 0) == 0)


def flops_for(rows, row):
    """Our FLOP count per token for a Python row's shape (from our row of the same shape), and the peak."""
    for r in rows:
        if r.get("impl") == "rwkv7-cpp" and all(r.get(k) == row.get(k) for k in ("n_layer", "n_embd", "vocab")):
            return r.get("flops_per_token"), r.get("peak_tflops")
    return None, None


def bench_section(rows):
    out = ["## Training step", ""]
    body = []
    for r in rows:
        mfu = r.get("mfu")
        if mfu is None and r.get("impl") != "rwkv7-cpp" and speed(r):
            f, peak = flops_for(rows, r)
            mfu = f * speed(r) / (peak * 1e12) if f and peak else None
        mem = gib(r)
        body.append([r.get("check", r.get("impl")), r.get("impl"), r.get("grad_cp"), r.get("tokens_per_s"),
                     r.get("step_ms_median"), f"{mem:.2f}" if mem is not None else "–",
                     f"{100 * mfu:.1f}%" if mfu else "–"])
    out += table(["check", "impl", "grad_cp", "tokens/s", "step ms", "peak GiB", "MFU"], body) + [""]
    out += ["MFU: training FLOPs per token by the project's count (rwkv7/train/flops.h; the same count for",
            "the Python rows' shape) over the device's datasheet bf16 peak.", "", "### Targets", ""]
    checks = []
    for cp in (1, 0):
        ours = {r.get("fused_ops"): r for r in rows
                if r.get("impl") == "rwkv7-cpp" and r.get("grad_cp") == cp and base_config(r) and speed(r)}
        for fused, other_impl, least in TARGETS:
            others = [r for r in rows if str(r.get("impl", "")).startswith(other_impl) and r.get("grad_cp") == cp
                      and speed(r)]
            if fused not in ours or not others:
                checks.append([f"fused_ops {fused} / {other_impl}", cp, "not measured", "", ""])
                continue
            other = max(others, key=speed)  # the other side's best variant
            ratio = speed(ours[fused]) / speed(other)
            verdict = "met" if ratio >= least else f"missed by {100 * (1 - ratio / least):.0f}%"
            checks.append([f"fused_ops {fused} / {other['impl']}", cp, f"{ratio:.2f}", f">= {least}", verdict])
        seed = [r for r in rows if r.get("impl") == "seed-230d32b" and r.get("grad_cp") == cp]
        for fused, r in sorted(ours.items()):
            if seed and gib(r) and gib(seed[0]):
                ratio = gib(r) / gib(seed[0])
                verdict = "met" if ratio <= 1 else f"missed by {100 * (ratio - 1):.0f}%"
                checks.append([f"peak memory, fused_ops {fused} / seed", cp, f"{ratio:.2f}", "<= 1", verdict])
    out += table(["ratio", "grad_cp", "measured", "target", ""], checks) + [""]
    return out


def model_name(row):
    """The model's row for a measured one: ours by fused_ops (head_chunk 0 only), the seed by name."""
    if row.get("impl") == "seed-230d32b":
        return "seed-230d32b"
    if row.get("impl") == "rwkv7-cpp" and base_config(row):
        return f"ours-fused{row.get('fused_ops', 0)}"
    return None


def model_section(rows, model_path=MODEL):
    """Each measured step beside the modelled one of the same row, batch, grad_cp and shape."""
    if not model_path.exists():
        return []
    model = json.loads(model_path.read_text())["rows"]
    body = []
    for r in rows:
        name = model_name(r)
        measured = r.get("step_ms_median")
        if name is None or not isinstance(measured, (int, float)) or measured <= 0:
            continue
        same = [m for m in model if m["impl"] == name and m["micro_bsz"] == r.get("bsz") and m["grad_cp"] == r.get("grad_cp")
                and all(m[k] == r.get(k) for k in ("n_layer", "n_embd", "vocab")) and m["ctx_len"] == r.get("ctx")]
        if same:
            m = same[0]
            body.append([r.get("check", r.get("impl")), name, r.get("bsz"), r.get("grad_cp"), measured,
                         m["modelled_step_ms"], f"{measured / m['modelled_step_ms']:.2f}"])
    if not body:
        return []
    return (["## Measured beside the model", "",
             f"The model: {model_path.name} (an H100 SXM's roofline plus 4 us a launch; docs/benchmarks.md).", ""]
            + table(["check", "model row", "micro_bsz", "grad_cp", "measured ms", "modelled ms", "measured / modelled"],
                    body) + [""])


def tests_section(path, title):
    if not path.exists():
        return [f"## {title}", "", f"not run, or cut short (no {path.name})", ""]
    report = json.loads(path.read_text())
    failed, skipped = [], []
    for suite in report.get("testsuites", []):
        for t in suite.get("testsuite", []):
            name = f"{suite['name']}.{t['name']}"
            if t.get("failures"):
                first = (t["failures"][0].get("failure", "").splitlines() or [""])[0]
                failed.append(f"{name}: {first[:200]}")
            elif t.get("result") == "SKIPPED":
                skipped.append(name)
    out = [f"## {title}", "", f"{report.get('tests', 0)} tests, {len(failed)} failed, {len(skipped)} skipped"
           f" ({report.get('time', '?')})", ""]
    out += [f"- FAILED {f}" for f in failed] + [f"- skipped {s}" for s in skipped]
    return out + [""]


def wkv7_section(rows):
    if not rows:
        return []
    return ["## WKV-7 kernel, ours beside the seed's", "", "```", json.dumps(rows[-1], indent=1), "```", ""]


def profile_section(out_dir):
    out = []
    for path in sorted(out_dir.glob("profile-*.json")):
        p = json.loads(path.read_text())
        out += [f"## Top kernels: {path.stem[len('profile-'):]} ({p['clock']} time, {p['ms_per_step']:.2f} ms per step)", ""]
        out += table(["kernel", "ms/step", "share", "calls/step"],
                     [[k["name"][:80].replace("|", "/"), k["ms_per_step"], f"{100 * k['share']:.1f}%", k["calls_per_step"]]
                      for k in p["kernels"]]) + [""]
    return out


def main():
    out_dir = pathlib.Path(sys.argv[1])
    lines = ["# GPU check summary", ""]
    gpus = out_dir / "gpus.txt"
    lines += ["Device: " + (gpus.read_text().strip() if gpus.exists() else "unknown"), ""]
    steps = json_lines(out_dir / "steps.jsonl")
    lines += ["## Steps", ""] + table(["step", "exit", "seconds"], [
        [s.get("step"), "timed out" if s.get("rc") in (124, 137) else s.get("rc"), s.get("seconds")]
        for s in steps]) + [""]
    builds = json_lines(out_dir / "prebuild.log")
    if builds:
        lines += ["RWKV-LM kernels compiled in the background: " + ", ".join(
            f"{b.get('name')} {'ok' if b.get('ok') else 'FAILED'} {b.get('seconds')} s" for b in builds), ""]
    sections = [
        lambda: tests_section(out_dir / "cuda-tests.json", "CUDA tests"),
        lambda: tests_section(out_dir / "nccl-tests.json", "NCCL tests (a world of one)"),
        lambda: bench_section(json_lines(out_dir / "bench.jsonl")),
        lambda: model_section(json_lines(out_dir / "bench.jsonl")),
        lambda: wkv7_section(json_lines(out_dir / "wkv7.json")),
        lambda: profile_section(out_dir),
    ]
    for section in sections:  # one unreadable file must not cost the others' summary
        try:
            lines += section()
        except Exception as e:  # noqa: BLE001
            lines += [f"(a section could not be read: {type(e).__name__}: {e})", ""]
    text = "\n".join(lines)
    (out_dir / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
