"""Data-parallel training over c10d/Gloo on the CPU: 2 processes x micro_bsz 2 are the seed's
1 x 4 (its sampler gives them the same samples), with and without optimizer sharding, with
long context (chunk_ctx) and with gradient accumulation; a killed
rank ends the others with an error; torchrun launches the binary as it is, and restarts it after a
killed rank (--max-restarts) to resume exactly."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import golden

REF = json.load(open(golden("train_byte_L2_D128/reference.json")))
GOLDEN_CFG = (
    "data_file: {data}\nvocab_size: 256\nctx_len: 64\nn_layer: 2\nn_embd: 128\nmicro_bsz: 4\n"
    "lr_init: 6e-4\nlr_final: 6e-5\nwarmup_steps: 10\nweight_decay: 0.001\nmy_exit_tokens: 1693990\n"
    "magic_prime: 26459\nepoch_save: 1\nepoch_samples: 160\nepoch_limit: 3\ndevice: cpu\nthreads: 1\n"
    "load_model: {init}\nproj_dir: {proj}\n")
PORT = [29700 + os.getpid() % 200]


def config(tmp_path, name, init=None):
    path = tmp_path / f"{name}.yaml"
    path.write_text(GOLDEN_CFG.format(data=str(golden("data/lambada_bytes.bin"))[:-4],
                                      init=init or golden("train_byte_L2_D128/rwkv-init.pth"), proj=tmp_path / name))
    return path


def ranks(app, cfg, world, *overrides, env_extra=None):
    PORT[0] += 1
    procs = []
    for r in range(world):
        env = dict(os.environ, RANK=str(r), WORLD_SIZE=str(world), LOCAL_RANK=str(r),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(PORT[0]), **(env_extra or {}))
        procs.append(subprocess.Popen([str(app), "train", "--config", str(cfg), *overrides], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def losses(run_dir):
    return [json.loads(l)["loss"] for l in open(run_dir / "metrics.jsonl") if l.startswith('{"step"')]


def window_max(a, b, lo, hi):
    return max(abs(a[i] - b[i]) for i in range(lo, hi))


def test_two_ranks_reproduce_the_seeds_single_process_run(app, tmp_path):
    # the rounding envelope of this run: our single process from the init and from the init
    # with every weight one ulp away (see tests/test_train.cpp)
    init = torch.load(golden("train_byte_L2_D128/rwkv-init.pth"))
    init = {k: torch.nextafter(v, torch.full_like(v, 1e9)) for k, v in init.items()}
    torch.save(init, tmp_path / "init-1ulp.pth")
    for name, init_path in [("single", None), ("nudged", tmp_path / "init-1ulp.pth")]:
        r = subprocess.run([str(app), "train", "--config", str(config(tmp_path, name, init_path))],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    single, nudged = losses(tmp_path / "single"), losses(tmp_path / "nudged")
    seed = [s["loss"] for s in REF["steps"]]
    # with and without sharding; each with long context (2 chunks of 32: the gradients are
    # complete only after the second backward pass, and only then reduced); and micro_bsz 1 with
    # 2 accumulated micro-batches per step
    for zero, extra in (("0", []), ("1", []), ("0", ["chunk_ctx=32"]), ("1", ["chunk_ctx=32"]),
                        ("0", ["micro_bsz=1", "accumulate_grad_batches=2"]),
                        ("1", ["micro_bsz=1", "accumulate_grad_batches=2", "chunk_ctx=32"])):
        name = f"dp-zero{zero}" + "".join("-" + e.split("=")[0][:5] + e.split("=")[1] for e in extra)
        procs = ranks(app, config(tmp_path, name), 2, "micro_bsz=2", f"zero_stage={zero}", *extra)
        for p in procs:
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, err
        dp = losses(tmp_path / name)
        assert len(dp) == 120
        assert window_max(dp, seed, 0, 30) <= 1e-5, name
        for lo in (30, 60, 90):
            assert window_max(dp, seed, lo, lo + 30) <= max(1e-5, 3 * window_max(single, nudged, lo, lo + 30)), (name, lo)
        # only rank 0 writes; the checkpoints are whole and loadable
        assert torch.load(tmp_path / name / "rwkv-2.pth", weights_only=True)["head.weight"].shape == (256, 128)


def test_a_killed_rank_stops_the_others_with_an_error(app, tmp_path):
    cfg = config(tmp_path, "killed")
    procs = ranks(app, cfg, 2, "micro_bsz=2", "epoch_limit=0", "dist_timeout=30")
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(losses(tmp_path / "killed")) >= 5):
        time.sleep(0.1)
    procs[1].send_signal(signal.SIGKILL)
    t0 = time.time()
    out, err = procs[0].communicate(timeout=90)
    procs[1].communicate()
    assert procs[0].returncode == 1
    assert time.time() - t0 < 60
    assert "lost contact with the other processes" in err, err


def test_torchrun_launches_the_binary(app, tmp_path):
    cfg = config(tmp_path, "torchrun")
    PORT[0] += 1
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                        "--master-port", str(PORT[0]), "--no-python", str(app), "train", "--config", str(cfg),
                        "micro_bsz=2", "epoch_limit=1"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert abs(losses(tmp_path / "torchrun")[0] - REF["steps"][0]["loss"]) <= 1e-5


@pytest.mark.two_runs
def test_sharded_run_stopped_by_sigterm_resumes_exactly(app, tmp_path):
    # ZeRO-1 writes one state shard per rank; the resumed run must find all of them and continue
    # as if it had never stopped (the same losses as an uninterrupted 2-rank run).
    args = ("micro_bsz=2", "zero_stage=1", "epoch_limit=2")
    for p in ranks(app, config(tmp_path, "whole"), 2, *args):
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    whole = losses(tmp_path / "whole")
    assert len(whole) == 80
    procs = ranks(app, config(tmp_path, "cut"), 2, *args)
    deadline = time.time() + 300
    while time.time() < deadline and not ((tmp_path / "cut" / "metrics.jsonl").exists()
                                          and len(losses(tmp_path / "cut")) >= 50):
        time.sleep(0.05)
    procs[0].send_signal(signal.SIGTERM)  # one rank's signal stops both at the same step
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "SIGTERM: saved" in outs[0][0]
    stopped_at = len(losses(tmp_path / "cut"))
    assert 50 <= stopped_at < 80
    for r in range(2):
        assert (tmp_path / "cut" / f"rwkv-1.state.rank{r}-of-2.pth").is_file()
    procs = ranks(app, config(tmp_path, "cut"), 2, "micro_bsz=2", "zero_stage=1", "train_stage=3", "epoch_limit=1")
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "with its training state (exact resume" in outs[0][0], outs[0][0]
    cut = losses(tmp_path / "cut")
    assert len(cut) == 80
    assert max(abs(a - b) for a, b in zip(cut, whole)) <= 1e-6


def torchrun_workers(agent_pid):
    """(pid, RANK, TORCHELASTIC_RESTART_COUNT) of the processes torchrun's agent started."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) != agent_pid:
                    continue
            with open(f"/proc/{name}/environ") as f:
                env = dict(kv.split("=", 1) for kv in f.read().split("\0") if "=" in kv)
            found.append((int(name), int(env["RANK"]), int(env["TORCHELASTIC_RESTART_COUNT"])))
        except (OSError, KeyError, ValueError, IndexError):  # gone meanwhile, or not a worker
            pass
    return found


def torchrun_resumable(app, tmp_path, name, restarts, log, args):
    """2 processes under torchrun --max-restarts `restarts`, resuming (train_stage 3) from a fresh
    proj_dir that holds the golden rwkv-init.pth."""
    cfg = config(tmp_path, name)
    cfg.write_text("".join(l for l in cfg.read_text().splitlines(True) if not l.startswith("load_model:")))
    (tmp_path / name).mkdir()
    shutil.copy(golden("train_byte_L2_D128/rwkv-init.pth"), tmp_path / name / "rwkv-init.pth")
    PORT[0] += 1
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                             "--max-restarts", str(restarts), "--master-port", str(PORT[0]), "--no-python",
                             str(app), "train", "--config", str(cfg), *args], stdout=log, stderr=subprocess.STDOUT)


def logged_steps(run_dir):
    """step -> every loss logged for it (a step redone after a kill appears twice)"""
    out = {}
    path = run_dir / "metrics.jsonl"
    for line in (open(path) if path.exists() else []):
        if line.startswith('{"step"'):
            m = json.loads(line)
            out.setdefault(m["step"], []).append(m["loss"])
    return out


def killed_and_restarted(app, tmp_path, kills, overrides):
    """torchrun --max-restarts `kills`; each attempt's rank (attempt + 1) % 2 SIGKILLed 3 steps past
    its first checkpoint; returns nothing, asserts that every step logged, before or after a kill,
    is the uninterrupted run's (1e-6)."""
    per_epoch = 10
    steps = per_epoch * (kills + 2)
    args = (*overrides, "epoch_samples=40", "epoch_limit=0", f"my_exit_tokens={steps * 256}", "train_stage=3",
            "dist_timeout=20")

    def launch(name, restarts, log):
        return torchrun_resumable(app, tmp_path, name, restarts, log, args)

    def logged(name):
        return logged_steps(tmp_path / name)

    with open(tmp_path / "whole.log", "w") as log:
        p = launch("whole", 0, log)
        assert p.wait(timeout=300) == 0, (tmp_path / "whole.log").read_text()[-3000:]
    whole = {s: v[0] for s, v in logged("whole").items()}
    assert sorted(whole) == list(range(steps))

    t0 = time.time()
    with open(tmp_path / "cut.log", "w") as log:
        p = launch("cut", kills, log)
        try:
            for attempt in range(kills):
                # this attempt resumed at step 10 * attempt; 3 steps past its first checkpoint
                target = per_epoch * (attempt + 1) + 3
                deadline = time.time() + 90
                while time.time() < deadline and p.poll() is None and max(logged("cut"), default=-1) < target:
                    time.sleep(0.02)
                reached = max(logged("cut"), default=-1)
                assert reached >= target, (attempt, reached, p.poll(), (tmp_path / "cut.log").read_text()[-3000:])
                workers = torchrun_workers(p.pid)
                # one restart per kill: a higher count means a restarted group failed to meet
                assert sorted((rank, count) for _, rank, count in workers) == [(0, attempt), (1, attempt)], (
                    attempt, workers, (tmp_path / "cut.log").read_text()[-3000:])
                os.kill(next(pid for pid, rank, _ in workers if rank == (attempt + 1) % 2), signal.SIGKILL)
            rc = p.wait(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    out = (tmp_path / "cut.log").read_text()
    assert rc == 0, out[-3000:]
    assert time.time() - t0 < 150
    assert "failed to bind" not in out  # the workers connect to the agent's store, they do not host one
    assert out.count("with its training state (exact resume") == kills, out[-3000:]
    cut = logged("cut")
    assert sorted(cut) == list(range(steps))
    assert sum(len(v) for v in cut.values()) > steps  # steps past a checkpoint were redone after each kill
    worst = max(abs(loss - whole[s]) for s, losses_of_s in cut.items() for loss in losses_of_s)
    assert worst <= 1e-6, worst


@pytest.mark.two_runs
def test_torchrun_restarts_after_killed_ranks_resume_exactly(app, tmp_path):
    # torchrun's agent serves the store on MASTER_PORT and keeps it across restarts: the workers
    # must connect to it (not bind it) and keep each attempt's keys apart, or a restarted rank
    # reads the address a killed one published and fails ("Gloo connectFullMesh failed ...
    # Connect timeout", after 5 x dist_timeout) or hangs. 5 kills in a row, each a mini-epoch
    # (10 steps) after the last restart; every attempt resumes from the newest checkpoint's state,
    # and every step logged, before or after a kill, is the uninterrupted run's.
    killed_and_restarted(app, tmp_path, 5, ("micro_bsz=2",))


def test_a_rank_that_never_comes_ends_the_other_within_dist_timeout(app, tmp_path):
    # dist_timeout bounds the whole rendezvous: rank 1 started alone finds no store to meet at,
    # rank 0 alone no peer; each says what it waited for. (LibTorch's own client retries alone
    # took about 2.5 x the timeout.)
    cfg = config(tmp_path, "alone")
    for rank, needle in ((1, "waited dist_timeout = 4 s for the store at 127.0.0.1:"), (0, "rank(s) 1 never came")):
        PORT[0] += 1
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(PORT[0]))
        t0 = time.time()
        r = subprocess.run([str(app), "train", "--config", str(cfg), "micro_bsz=2", "dist_timeout=4"], env=env,
                           capture_output=True, text=True, timeout=60)
        took = time.time() - t0
        assert r.returncode == 1, r.stderr
        assert needle in r.stderr, r.stderr
        assert took < 4 + 3, (rank, took)
