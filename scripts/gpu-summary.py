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
    return b / 2**30 if b is not None else row.get("peak_mem_gib")


def base_config(row):
    """Rows comparable with the seed's: its MiniPile shape, no fine-tuning, no extra key."""
    return (row.get("train_type", "full") in ("", "full") and row.get("peft", "none") in ("", "none")
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
        if mfu is None and r.get("impl") != "rwkv7-cpp":
            f, peak = flops_for(rows, r)
            mfu = f * r["tokens_per_s"] / (peak * 1e12) if f and peak else None
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
                if r.get("impl") == "rwkv7-cpp" and r.get("grad_cp") == cp and base_config(r)}
        for fused, other_impl, least in TARGETS:
            others = [r for r in rows if r.get("impl", "").startswith(other_impl) and r.get("grad_cp") == cp]
            if fused not in ours or not others:
                checks.append([f"fused_ops {fused} / {other_impl}", cp, "not measured", "", ""])
                continue
            other = max(others, key=lambda r: r["tokens_per_s"])  # the other side's best variant
            ratio = ours[fused]["tokens_per_s"] / other["tokens_per_s"]
            verdict = "met" if ratio >= least else f"missed by {100 * (1 - ratio / least):.0f}%"
            checks.append([f"fused_ops {fused} / {other['impl']}", cp, f"{ratio:.2f}", f">= {least}", verdict])
        seed = [r for r in rows if r.get("impl") == "seed-230d32b" and r.get("grad_cp") == cp]
        for fused, r in sorted(ours.items()):
            if seed and gib(r) is not None and gib(seed[0]) is not None:
                ratio = gib(r) / gib(seed[0])
                verdict = "met" if ratio <= 1 else f"missed by {100 * (ratio - 1):.0f}%"
                checks.append([f"peak memory, fused_ops {fused} / seed", cp, f"{ratio:.2f}", "<= 1", verdict])
    out += table(["ratio", "grad_cp", "measured", "target", ""], checks) + [""]
    return out


def tests_section(path):
    if not path.exists():
        return ["## CUDA tests", "", "not run (no cuda-tests.json)", ""]
    report = json.loads(path.read_text())
    failed, skipped = [], []
    for suite in report.get("testsuites", []):
        for t in suite.get("testsuite", []):
            name = f"{suite['name']}.{t['name']}"
            if t.get("failures"):
                failed.append(name + ": " + t["failures"][0].get("failure", "").splitlines()[0][:200])
            elif t.get("result") == "SKIPPED":
                skipped.append(name)
    out = ["## CUDA tests", "", f"{report.get('tests', 0)} tests, {len(failed)} failed, {len(skipped)} skipped"
           f" ({report.get('time', '?')})", ""]
    out += [f"- FAILED {f}" for f in failed] + [f"- skipped {s}" for s in skipped]
    return out + [""]


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
        [s["step"], "timed out" if s["rc"] in (124, 137) else s["rc"], s["seconds"]] for s in steps]) + [""]
    builds = json_lines(out_dir / "prebuild.log")
    if builds:
        lines += ["RWKV-LM kernels compiled in the background: " + ", ".join(
            f"{b['name']} {'ok' if b['ok'] else 'FAILED'} {b['seconds']} s" for b in builds), ""]
    lines += tests_section(out_dir / "cuda-tests.json")
    lines += bench_section(json_lines(out_dir / "bench.jsonl"))
    wkv = json_lines(out_dir / "wkv7.json")
    if wkv:
        lines += ["## WKV-7 kernel, ours beside the seed's", "", "```", json.dumps(wkv[-1], indent=1), "```", ""]
    lines += profile_section(out_dir)
    text = "\n".join(lines)
    (out_dir / "summary.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
