"""Data-parallel training over c10d/Gloo on the CPU: 2 processes x micro_bsz 2 are the seed's
1 x 4 (its sampler gives them the same samples), with and without optimizer sharding; a killed
rank ends the others with an error; torchrun launches the binary as it is."""
import json
import os
import signal
import subprocess
import sys
import time

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
    for zero in ("0", "1"):
        name = f"dp-zero{zero}"
        procs = ranks(app, config(tmp_path, name), 2, "micro_bsz=2", f"zero_stage={zero}")
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
