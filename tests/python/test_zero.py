"""ZeRO stages 2 and 3, gradient accumulation, and resuming on another number of processes, on the
CPU over Gloo, against the seed's golden run (train_byte_L2_D128: 1 process x micro_bsz 4) and
against our own uninterrupted runs. docs/distributed.md says what each stage keeps."""
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import golden
from test_distributed import PORT, REF, config, killed_and_restarted, losses, ranks, window_max


def finish(procs, timeout=600):
    outs = [p.communicate(timeout=timeout) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [o[1][-2000:] for o in outs]
    return outs


def train(app, tmp_path, name, world, *overrides, init=None):
    cfg = config(tmp_path, name, init)
    if world == 1:
        r = subprocess.run([str(app), "train", "--config", str(cfg), *overrides], capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        return [(r.stdout, r.stderr)]
    return finish(ranks(app, cfg, world, *overrides))


def test_stages_2_and_3_and_accumulation_reproduce_the_seeds_run(app, tmp_path):
    # the rounding envelope: our single process from the init and from the init one ulp away
    init = torch.load(golden("train_byte_L2_D128/rwkv-init.pth"))
    torch.save({k: torch.nextafter(v, torch.full_like(v, 1e9)) for k, v in init.items()}, tmp_path / "init-1ulp.pth")
    train(app, tmp_path, "single", 1)
    train(app, tmp_path, "nudged", 1, init=tmp_path / "init-1ulp.pth")
    single, nudged = losses(tmp_path / "single"), losses(tmp_path / "nudged")
    seed = [s["loss"] for s in REF["steps"]]
    runs = {  # name: (processes, overrides)
        "accumulated": (1, ["micro_bsz=2", "accumulate_grad_batches=2"]),
        "zero1": (2, ["micro_bsz=2", "zero_stage=1"]),
        "zero2": (2, ["micro_bsz=2", "zero_stage=2"]),
        "zero3": (2, ["micro_bsz=2", "zero_stage=3"]),
        "zero3-cp": (2, ["micro_bsz=2", "zero_stage=3", "grad_cp=1"]),
        "zero2-accumulated": (2, ["micro_bsz=1", "accumulate_grad_batches=2", "zero_stage=2"]),
        "zero3-accumulated-chunks": (2, ["micro_bsz=1", "accumulate_grad_batches=2", "zero_stage=3", "chunk_ctx=32"]),
    }
    for name, (world, overrides) in runs.items():
        train(app, tmp_path, name, world, *overrides)
        got = losses(tmp_path / name)
        assert len(got) == 120, name
        assert window_max(got, seed, 0, 30) <= 1e-5, name
        for lo in (30, 60, 90):
            assert window_max(got, seed, lo, lo + 30) <= max(1e-5, 3 * window_max(single, nudged, lo, lo + 30)), (name, lo)
    # Stages 1, 2 and 3 do the same arithmetic (the same buckets summed onto the same owners, the
    # same Adam there); only where the tensors live differs. So their checkpoints are bit-equal,
    # and rwkv-<n>.pth is the whole model in the seed's format at every stage.
    ref = torch.load(tmp_path / "zero1" / "rwkv-2.pth", weights_only=True)
    for name in ("zero2", "zero3", "zero3-cp"):
        got = torch.load(tmp_path / name / "rwkv-2.pth", weights_only=True)
        assert list(got) == list(ref), name
        for k in ref:
            assert torch.equal(got[k], ref[k]), (name, k)


@pytest.mark.two_runs
def test_stages_1_2_and_3_save_the_same_bf16_model_with_the_fused_paths(app, tmp_path):
    # bf16 weights are broadcast as they are, their gradients summed in fp32 on the owner, whose
    # fp32 master and moments stay in its state shard; the fused ops and the chunked head save
    # weights for their backward, which stage 3 keeps until the gradient has been accumulated.
    extra = ("micro_bsz=2", "precision=bf16", "fused_ops=1", "head_chunk=32", "grad_cp=1", "epoch_limit=1")
    for stage in (1, 2, 3):
        train(app, tmp_path, f"bf16-zero{stage}", 2, *extra, f"zero_stage={stage}")
    ref = torch.load(tmp_path / "bf16-zero1" / "rwkv-0.pth", weights_only=True)
    assert ref["head.weight"].dtype == torch.bfloat16
    for stage in (2, 3):
        got = torch.load(tmp_path / f"bf16-zero{stage}" / "rwkv-0.pth", weights_only=True)
        assert list(got) == list(ref)
        for k in ref:
            assert torch.equal(got[k], ref[k]), (stage, k)
        assert losses(tmp_path / f"bf16-zero{stage}") == losses(tmp_path / "bf16-zero1")


def test_four_ranks_at_stage_3_equal_one_process_of_four(app, tmp_path):
    train(app, tmp_path, "four", 4, "micro_bsz=1", "zero_stage=3", "epoch_limit=1")
    got = losses(tmp_path / "four")
    assert len(got) == 40
    assert window_max(got, [s["loss"] for s in REF["steps"]], 0, 30) <= 1e-5


def stop_with_sigterm(procs, run_dir, after_steps):
    deadline = time.time() + 300
    while time.time() < deadline and not ((run_dir / "metrics.jsonl").exists() and len(losses(run_dir)) >= after_steps):
        time.sleep(0.05)
    procs[0].send_signal(signal.SIGTERM)  # one rank's signal stops all at the same step
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), outs
    assert "SIGTERM: saved" in outs[0][0]


@pytest.mark.two_runs
@pytest.mark.parametrize("world,overrides", [
    (2, ("micro_bsz=2", "zero_stage=2")),
    (2, ("micro_bsz=2", "zero_stage=3", "grad_cp=1")),
    (2, ("micro_bsz=1", "accumulate_grad_batches=2", "zero_stage=3")),
    (1, ("micro_bsz=2", "accumulate_grad_batches=2")),
], ids=["zero2", "zero3", "zero3-accumulated", "accumulated"])
def test_stopped_by_sigterm_resumes_exactly(app, tmp_path, world, overrides):
    train(app, tmp_path, "whole", world, *overrides, "epoch_limit=2")
    whole = losses(tmp_path / "whole")
    assert len(whole) == 80
    cfg = config(tmp_path, "cut")
    if world == 1:
        procs = [subprocess.Popen([str(app), "train", "--config", str(cfg), *overrides, "epoch_limit=2"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    else:
        procs = ranks(app, cfg, world, *overrides, "epoch_limit=2")
    stop_with_sigterm(procs, tmp_path / "cut", 50)
    stopped_at = len(losses(tmp_path / "cut"))
    assert 50 <= stopped_at < 80
    outs = train(app, tmp_path, "cut", world, *overrides, "train_stage=3", "epoch_limit=1")
    assert "with its training state (exact resume" in outs[0][0], outs[0][0]
    cut = losses(tmp_path / "cut")
    assert len(cut) == 80
    assert max(abs(a - b) for a, b in zip(cut, whole)) <= 1e-6


@pytest.mark.two_runs
def test_resumes_on_another_number_of_processes_at_the_same_global_batch(app, tmp_path):
    # The global batch is 4 throughout: 2 processes x micro_bsz 2, or 1 x 2 x 2 accumulated, or
    # 2 x 1 x 2. The optimizer state saved as 2 shards (or whole) is merged and resharded; the
    # resumed mini-epoch follows the uninterrupted 2-process run. Its first step is the saved
    # weights' loss; the rest differ only by the order in which each step's gradient is summed
    # (2 ranks x 2 samples, or 2 micro-batches of 2 samples), within the rounding envelope of
    # the whole run (docs/testing.md).
    init = torch.load(golden("train_byte_L2_D128/rwkv-init.pth"))
    torch.save({k: torch.nextafter(v, torch.full_like(v, 1e9)) for k, v in init.items()}, tmp_path / "init-1ulp.pth")
    train(app, tmp_path, "whole", 2, "micro_bsz=2", "zero_stage=1", "epoch_limit=2")
    train(app, tmp_path, "nudged", 2, "micro_bsz=2", "zero_stage=1", "epoch_limit=2", init=tmp_path / "init-1ulp.pth")
    whole, nudged = losses(tmp_path / "whole"), losses(tmp_path / "nudged")
    envelope = max(1e-6, 3 * window_max(whole, nudged, 41, 80))
    one_by_two_by_two = ("micro_bsz=2", "accumulate_grad_batches=2")
    for name, first, then in (
            ("2-to-1", (2, ("micro_bsz=2", "zero_stage=1")), (1, one_by_two_by_two)),
            ("1-to-2", (1, one_by_two_by_two), (2, ("micro_bsz=1", "accumulate_grad_batches=2", "zero_stage=3")))):
        train(app, tmp_path, name, first[0], *first[1], "epoch_limit=1")
        outs = train(app, tmp_path, name, then[0], *then[1], "train_stage=3", "epoch_limit=1")
        assert "exact resume at mini-epoch 1, step 0" in outs[0][0] and "resharded" in outs[0][0], outs[0][0]
        got = losses(tmp_path / name)
        assert len(got) == 80
        assert abs(got[40] - whole[40]) <= 1e-6, name
        assert window_max(got, whole, 41, 80) <= envelope, (name, window_max(got, whole, 41, 80), envelope)
    # another global batch is refused, in one line that names the numbers
    r = subprocess.run([str(app), "train", "--config", str(config(tmp_path, "2-to-1")), "micro_bsz=2",
                        "train_stage=3"], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if "error" in l]
    assert len(lines) == 1, r.stderr
    assert ("40 steps per mini-epoch by micro_bsz x accumulate_grad_batches x devices = 2 x 2 x 1, this config has 80"
            in lines[0] and "160 / (2 x 1 x 1)" in lines[0]), lines[0]
    assert "same global batch" in lines[0], lines[0]


@pytest.mark.two_runs
@pytest.mark.parametrize("overrides", [
    ("micro_bsz=2", "zero_stage=2"),
    ("micro_bsz=1", "accumulate_grad_batches=2", "zero_stage=3", "grad_cp=1"),
], ids=["zero2", "zero3-accumulated"])
def test_torchrun_restart_after_a_killed_rank_resumes_exactly(app, tmp_path, overrides):
    # torchrun --max-restarts 1; rank 1 SIGKILLed 3 steps past the first checkpoint: the group is
    # restarted, resumes from that checkpoint's state by itself, and every step logged equals the
    # uninterrupted run's.
    killed_and_restarted(app, tmp_path, 1, overrides)


def test_bench_under_torchrun_prints_every_ranks_peak_memory_once(app, tmp_path):
    PORT[0] += 1
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
                        str(PORT[0]), "--no-python", str(app), "bench", "--config", str(config(tmp_path, "bench")),
                        "--steps", "2", "--warmup", "1", "--out", str(tmp_path / "bench.json"), "micro_bsz=2",
                        "zero_stage=3"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [l for l in r.stdout.splitlines() if l.startswith("{")]
    assert len(rows) == 1, r.stdout  # rank 0 alone prints
    row = json.loads(rows[0])
    assert row["processes"] == 2 and row["zero_stage"] == 3
    assert len(row["rank_peak_mem_bytes"]) == 2 and min(row["rank_peak_mem_bytes"]) > 0
    assert row["peak_mem_bytes"] == max(row["rank_peak_mem_bytes"])
    assert json.load(open(tmp_path / "bench.json")) == row
