"""Faults that long runs meet, each as a user meets it: a full disk, a second trainer on the same
folder, a fresh start in a used folder, a dropped terminal (SIGHUP) and a closed pipe, a data file
cut short under the run, bad numbers, state files that do not belong. Every case ends with one
clear line and an error exit (never a signal), and nothing already saved is lost: the newest
checkpoint still loads with torch.load(weights_only=True).

The full-disk cases mount a small tmpfs (the tests run as root, as CI does)."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest
import torch

from conftest import golden
from test_cli import BYTES, interrupt_and_resume_exactly, losses, run_app, write_config

TINY = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")


@contextlib.contextmanager
def small_disk(path, size):
    """A tmpfs of `size` (e.g. "3m") at `path`, for the length of the block."""
    path.mkdir(parents=True, exist_ok=True)
    assert os.geteuid() == 0, "the full-disk tests mount a tmpfs: run them as root (CI does)"
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path):
    """Write until the disk is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass


def one_error_line(r, *needles):
    lines = r.stderr.strip().splitlines()
    assert r.returncode > 0, (r.returncode, r.stderr)  # an error exit, not a signal
    assert "terminate called" not in r.stderr, r.stderr
    errors = [l for l in lines if not l.startswith("warning:")]
    assert len(errors) == 1, r.stderr
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


def newest_checkpoint(run_dir):
    numbered = sorted(int(f[5:-4]) for f in os.listdir(run_dir)
                      if f.startswith("rwkv-") and f.endswith(".pth") and f[5:-4].isdigit())
    return run_dir / f"rwkv-{numbered[-1]}.pth" if numbered else None


def every_line_is_whole(path):
    text = open(path).read()
    assert text == "" or text.endswith("\n"), f"{path} ends in a partial line"
    if path.suffix == ".jsonl":
        for line in text.splitlines():
            json.loads(line)


# ---- 1. a full disk ----

def test_full_disk_during_training_stops_cleanly_and_keeps_the_last_checkpoint(app, tmp_path):
    with small_disk(tmp_path / "disk", "5m") as disk:
        cfg = write_config(tmp_path / "c.yaml", proj_dir=disk / "run", epoch_samples=80)
        r = run_app(app, "train", "--config", cfg, timeout=600)
        one_error_line(r, "write failed", "No space left on device")
        run = disk / "run"
        assert not [f for f in os.listdir(run) if f.endswith(".tmp")], os.listdir(run)
        every_line_is_whole(run / "metrics.jsonl")
        every_line_is_whole(run / "train_log.txt")
        newest = newest_checkpoint(run)
        assert newest is not None
        sd = torch.load(newest, weights_only=True)
        assert sd["emb.weight"].shape == (256, 64)
        shutil.copytree(run, tmp_path / "rescued")
    # the rescued folder resumes; if the newest checkpoint lost its state to the full disk, the
    # resume says so rather than pairing it with anything else
    r = run_app(app, "train", "--config", cfg, f"proj_dir={tmp_path / 'rescued'}", "train_stage=3",
                "epoch_limit=1")
    assert r.returncode == 0, r.stderr
    if (tmp_path / "rescued" / (newest.name[:-4] + ".state.pth")).exists():
        assert "with its training state" in r.stdout, r.stdout
    else:
        assert "resuming from the weights alone" in r.stderr, r.stderr


def test_a_failed_log_write_stops_the_run(app, tmp_path):
    # metrics.jsonl on /dev/full: every write fails with ENOSPC, the same path as a full disk
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").symlink_to("/dev/full")
    cfg = write_config(tmp_path / "c.yaml", proj_dir=run, epoch_limit=1)
    r = run_app(app, "train", "--config", cfg)
    one_error_line(r, "metrics.jsonl: write failed", "No space left on device")
    assert not (run / "rwkv-0.pth").exists()  # it stopped at the first unlogged step


def test_convert_logits_and_tokenize_onto_a_full_disk(app, tmp_path):
    with small_disk(tmp_path / "disk", "1m") as disk:
        r = run_app(app, "convert", "--in", TINY, "--out", disk / "tiny.pth")  # 3.4 MB into 1 MB
        one_error_line(r, "tiny.pth: write failed", "No space left on device")
        fill(disk / "filler")
        r = run_app(app, "logits", "--model", TINY, "--tokens", "34,105,110", "--out", disk / "l.json")
        one_error_line(r, "l.json: write failed")
        src = tmp_path / "in.jsonl"
        src.write_text("".join(json.dumps({"text": "a line of text " * 40}) + "\n" for _ in range(50)))
        r = run_app(app, "tokenize", "--tokenizer", "bytes", "--input", src, "--output", disk / "tok")
        one_error_line(r, "write failed")
        assert sorted(os.listdir(disk)) == ["filler"]  # no partial file under any name


# ---- 2. a second trainer ----

def test_a_second_trainer_on_the_same_folder_is_refused(app, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", proj_dir=tmp_path / "run")
    first = subprocess.Popen([str(app), "train", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (tmp_path / "run" / "metrics.jsonl").exists():
            time.sleep(0.05)
        for args in (["train", "--config", cfg, "train_stage=3"], ["prepare", "--config", cfg, "overwrite=1"]):
            r = run_app(app, *args)
            line = one_error_line(r, "is in use by rwkv7 train", f"pid {first.pid}")
            assert "another proj_dir" in line
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the dead trainer's lock file does not block the next one
    r = run_app(app, "train", "--config", cfg, "train_stage=3", "epoch_limit=1")
    assert r.returncode == 0, r.stderr


# ---- 3. a fresh start in a used folder ----

def test_a_fresh_start_refuses_a_folder_with_another_runs_checkpoints(app, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", proj_dir=tmp_path / "run", epoch_limit=1)
    assert run_app(app, "train", "--config", cfg).returncode == 0
    before = {f: (tmp_path / "run" / f).read_bytes() for f in os.listdir(tmp_path / "run") if f.endswith(".pth")}
    assert "rwkv-0.pth" in before
    for args in (["train", "--config", cfg], ["prepare", "--config", cfg]):
        r = run_app(app, *args)
        one_error_line(r, "rwkv-0.pth", "train_stage: 3", "overwrite: 1")
    after = {f: (tmp_path / "run" / f).read_bytes() for f in os.listdir(tmp_path / "run") if f.endswith(".pth")}
    assert after == before  # nothing touched
    r = run_app(app, "train", "--config", cfg, "overwrite=1", "random_seed=2")
    assert r.returncode == 0, r.stderr
    assert "removed" in r.stderr
    assert (tmp_path / "run" / "rwkv-0.pth").read_bytes() != before["rwkv-0.pth"]


# ---- 4. a dropped terminal and a closed pipe ----

@pytest.mark.two_runs
def test_sighup_and_a_closed_pipe_save_and_resume_exactly(app, tmp_path):
    interrupt_and_resume_exactly(app, tmp_path, signal.SIGHUP, close_console=True)


# ---- 5. the data changes under the run ----

def test_data_cut_short_under_the_run_is_an_error_not_a_signal(app, tmp_path):
    data = tmp_path / "data"
    shutil.copy(BYTES + ".bin", str(data) + ".bin")
    shutil.copy(BYTES + ".idx", str(data) + ".idx")
    cfg = write_config(tmp_path / "c.yaml", proj_dir=tmp_path / "run", data_file=data)
    p = subprocess.Popen([str(app), "train", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "run" / "rwkv-0.pth").exists():
        time.sleep(0.05)
    os.truncate(str(data) + ".bin", 1000)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 1, (p.returncode, err)
    assert "changed under the run" in err and "data.bin" in err, err
    assert torch.load(newest_checkpoint(tmp_path / "run"), weights_only=True)["head.weight"].shape == (256, 64)


# ---- 6. numbers and state files ----

def test_half_parsed_numbers_and_duplicate_keys_are_refused(app, tmp_path):
    for option, value, needle in [("--temperature", "0,8", "not a number"), ("--temperature", "nan", "not a number"),
                                  ("--top-p", "nan", "not a number"), ("--top-p", "1.5", "outside"),
                                  ("--max-tokens", "3abc", "not an integer"), ("--seed", "-1", "outside")]:
        r = run_app(app, "generate", "--model", TINY, "--tokenizer", "bytes", "--prompt", "a", option, value)
        one_error_line(r, option, needle)
    for key, value in [("lr_init", "nan"), ("ctx_len", "64x"), ("grad_clip", "inf"), ("micro_bsz", "2.5")]:
        r = run_app(app, "train", "--config", write_config(tmp_path / "c.yaml", proj_dir=tmp_path / "r"),
                    f"{key}={value}")
        one_error_line(r, f"'{key}'")
    dup = tmp_path / "dup.yaml"
    dup.write_text(write_config(tmp_path / "c.yaml", proj_dir=tmp_path / "r").read_text() + "ctx_len: 32\n")
    one_error_line(run_app(app, "train", "--config", dup), "'ctx_len' appears twice")
    r = run_app(app, "bench", "--config", write_config(tmp_path / "c.yaml", proj_dir=tmp_path / "r"),
                "--steps", "1", "--warmup", "0", f"threads={os.cpu_count() + 1}")
    assert r.returncode == 0 and "more than this machine's" in r.stderr, r.stderr


def edit_state(path, **changes):
    st = torch.load(path, weights_only=True)
    for k, v in changes.items():
        st[k] = torch.tensor(v)
    torch.save(st, path)


def test_state_files_that_do_not_belong_are_refused_with_advice(app, tmp_path):
    base = dict(epoch_limit=1)
    def train(name, *extra):
        cfg = write_config(tmp_path / f"{name}.yaml", proj_dir=tmp_path / name, **base)
        r = run_app(app, "train", "--config", cfg, *extra)
        assert r.returncode == 0, r.stderr
        return cfg
    cfg = train("a")
    train("other", "random_seed=7")                       # another run of the same size
    train("wide", "n_embd=128")                           # another model size
    state = tmp_path / "a" / "rwkv-0.state.pth"
    pristine = state.read_bytes()
    cases = [
        ("impossible position", lambda: edit_state(state, **{"run.epoch_in_run": -5, "run.step_in_epoch": 999999}),
         [], "impossible"),
        ("another run", lambda: shutil.copy(tmp_path / "other" / "rwkv-0.state.pth", state), [],
         "saved beside another checkpoint"),
        ("another size", lambda: shutil.copy(tmp_path / "wide" / "rwkv-0.state.pth", state), [],
         "saved beside another checkpoint"),
        ("another precision", lambda: None, ["precision=bf16"], "saved by a fp32 run, this run is bf16"),
        ("not a state file", lambda: state.write_bytes(b"junk"), [], "not a readable torch.save zip"),
    ]
    for name, spoil, extra, needle in cases:
        state.write_bytes(pristine)
        spoil()
        r = run_app(app, "train", "--config", cfg, "train_stage=3", *extra)
        line = one_error_line(r, str(state), needle)
        assert "exact_resume: 0" in line, (name, line)
    # a state shaped for another model, carrying this checkpoint's digest, fails on the shapes, named
    state.write_bytes(pristine)
    forged = torch.load(tmp_path / "wide" / "rwkv-0.state.pth", weights_only=True)
    forged["run.weights_digest"] = torch.load(state, weights_only=True)["run.weights_digest"]
    torch.save(forged, state)
    r = run_app(app, "train", "--config", cfg, "train_stage=3")
    one_error_line(r, str(state), "does not fit this model", "has shape", "exact_resume: 0")
    # and exact_resume: 0 resumes from the weights alone
    r = run_app(app, "train", "--config", cfg, "train_stage=3", "exact_resume=0")
    assert r.returncode == 0, r.stderr


def test_files_that_are_not_state_dicts_say_what_they_are(app, tmp_path):
    torch.save(torch.nn.Linear(2, 3), tmp_path / "module.pth")
    torch.save({"a": torch.zeros(3)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    r = run_app(app, "convert", "--in", tmp_path / "module.pth", "--out", tmp_path / "x.pth")
    one_error_line(r, "pickled Python object (torch.nn.modules.linear.Linear)", "model.state_dict()")
    r = run_app(app, "logits", "--model", tmp_path / "legacy.pth", "--tokens", "1")
    one_error_line(r, "legacy (non-zip) format", "torch.save(torch.load(path), new_path)")


def test_the_seeds_ways_to_continue_are_not_refused(app, tmp_path):
    run = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", proj_dir=run, epoch_limit=1)
    # prepare, then train_stage 3 from rwkv-init.pth: no state is expected there, so no warning
    assert run_app(app, "prepare", "--config", cfg).returncode == 0
    r = run_app(app, "train", "--config", cfg, "train_stage=3")
    assert r.returncode == 0 and "weights alone" not in r.stderr, r.stderr
    # continuing from a checkpoint of this folder with load_model + epoch_begin (the seed's way):
    # nothing of what it overwrites is there, and overwrite: 1 never removes the file it loads
    for extra in ([], ["overwrite=1"]):
        r = run_app(app, "train", "--config", cfg, f"load_model={run / 'rwkv-0.pth'}", "epoch_begin=1",
                    "train_stage=0", *extra)
        assert r.returncode == 0, r.stderr
        assert (run / "rwkv-0.pth").exists()
        if not extra:
            assert (run / "rwkv-1.pth").exists()
    # a state file written before the pairing checks is trusted, with a warning
    st = torch.load(run / "rwkv-1.state.pth", weights_only=True)
    del st["run.weights_digest"], st["run.precision_bits"]
    torch.save(st, run / "rwkv-1.state.pth")
    r = run_app(app, "train", "--config", cfg, "train_stage=3")
    assert r.returncode == 0 and "predates the pairing checks" in r.stderr, r.stderr
    # bench times the data-parallel step under a launcher's environment (docs/distributed.md):
    # alone, it waits for the other rank dist_timeout seconds and says so in one line
    env = dict(os.environ, WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", MASTER_PORT="29999")
    b = subprocess.run([str(app), "bench", "--config", str(cfg), "--steps", "1", "--warmup", "0", "zero_stage=1",
                        "dist_timeout=3"], capture_output=True, text=True, env=env, timeout=120)
    assert b.returncode != 0 and "rank(s) 1 never came" in b.stderr, b.stderr
    assert len([l for l in b.stderr.splitlines() if "error" in l]) == 1, b.stderr


# ---- 7. plot onto a full disk ----

def run_with_metrics(path, steps=60):
    """A proj_dir holding a metrics.jsonl as the trainer writes it: steps, a validation every 20
    steps, and a last line cut by a kill."""
    path.mkdir()
    lines = []
    for s in range(steps):
        lines.append(json.dumps({"step": s, "epoch": s // 20, "loss": 5.5 - 0.03 * s + 0.1 * (s % 3),
                                 "lr": 6e-4 * (1 - s / steps), "grad_norm": 1.0, "tokens": 256 * (s + 1),
                                 "tokens_per_s": 900.0 + s, "step_ms": 280.0, "skipped": False}))
        if s % 20 == 19:
            lines.append(json.dumps({"val_step": s, "epoch": s // 20, "val_loss": 5.0 - 0.01 * s}))
    (path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 60, "epo')
    return path


def whole_png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and data[-12:] == b"\0\0\0\0IEND\xaeB`\x82"


def test_plot_onto_a_full_disk_leaves_no_partial_png_or_temporaries(app, tmp_path):
    # gnuplot exits 0 with an empty or cut PNG when the disk fills: plot must see it, say so in
    # one line, keep the previous PNG and leave no temporary beside it, in the run or in $TMPDIR
    run = run_with_metrics(tmp_path / "run")
    private = tmp_path / "tmpdir"
    private.mkdir()

    def plot(out, tmpdir=private):
        return subprocess.run([str(app), "plot", "--run", str(run), "--out", str(out)], capture_output=True,
                              text=True, timeout=120, env=dict(os.environ, TMPDIR=str(tmpdir)))

    def nothing_left_behind():
        assert os.listdir(private) == [], os.listdir(private)
        assert os.listdir(run) == ["metrics.jsonl"], os.listdir(run)

    r = plot(tmp_path / "ok.png")
    assert r.returncode == 0 and "wrote" in r.stdout, r.stderr
    assert whole_png(tmp_path / "ok.png")
    assert (tmp_path / "ok.png").stat().st_size > 8192  # more than the one free page below
    nothing_left_behind()
    r = plot(tmp_path / "no such folder" / "x.png")
    one_error_line(r, "x.png", "cannot write")
    nothing_left_behind()
    with small_disk(tmp_path / "disk", "64k") as disk:
        (disk / "loss.png").write_bytes(b"the previous plot")
        fill(disk / "filler")
        # a full disk: gnuplot's PNG is empty
        r = plot(disk / "loss.png")
        one_error_line(r, "loss.png", "write failed")
        assert sorted(os.listdir(disk)) == ["filler", "loss.png"]
        assert (disk / "loss.png").read_bytes() == b"the previous plot"
        nothing_left_behind()
        # gnuplot's data and script onto the full disk ($TMPDIR there)
        r = plot(tmp_path / "second.png", tmpdir=disk)
        one_error_line(r, "No space left on device")
        assert sorted(os.listdir(disk)) == ["filler", "loss.png"]
        assert not (tmp_path / "second.png").exists() and not (tmp_path / "second.png.tmp").exists()
        nothing_left_behind()
        # one free page: gnuplot's PNG is cut after 4 KiB
        os.truncate(disk / "filler", (disk / "filler").stat().st_size - 4096)
        r = plot(disk / "loss.png")
        one_error_line(r, "loss.png", "write failed")
        assert sorted(os.listdir(disk)) == ["filler", "loss.png"]
        assert (disk / "loss.png").read_bytes() == b"the previous plot"
        nothing_left_behind()


# ---- 7. fine-tuning meets the same faults ----

@pytest.mark.two_runs
def test_a_lora_run_stopped_by_sigterm_resumes_exactly(app, tmp_path):
    """LoRA on the tiny model (RWKV-PEFT's data and schedule, 2 mini-epochs of 60 steps): SIGTERM
    mid-run saves the adapter and its training state; train_stage 3 ends with the losses of an
    uninterrupted run (1e-6) and its adapter, and no frozen weight is ever written."""
    def config(name):
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            f"proj_dir: {tmp_path / name}\ndata_file: {BYTES}\n"
            f"load_model: {golden('tiny_rwkv7_834K/tiny-rwkv7-834K.pth')}\n"
            "vocab_size: 256\nctx_len: 64\nn_layer: 12\nn_embd: 64\nmicro_bsz: 2\nadam_eps: 1e-8\n"
            "peft: lora\nlora_r: 8\nlora_alpha: 32\nlora_dropout: 0\nlr_init: 1e-3\nlr_final: 1e-4\n"
            "dataload: pad\ndata_shuffle: 1\nepoch_steps: 60\nepoch_count: 2\nlr_schedule: cos\n"
            "random_seed: 3\ndevice: cpu\nthreads: 1\n")
        return path
    assert run_app(app, "train", "--config", config("whole")).returncode == 0
    cut = config("cut")
    p = subprocess.Popen([str(app), "train", "--config", str(cut)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    metrics = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(losses(tmp_path / "cut")) < 70):
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 0
    assert "SIGTERM: saved" in p.stdout.read()
    stopped_at = len(losses(tmp_path / "cut"))
    assert 70 <= stopped_at < 120, stopped_at
    saved = torch.load(tmp_path / "cut" / "rwkv-1.pth", weights_only=True)  # the adapter only, RWKV-PEFT's names
    assert "blocks.0.att.key.lora_A" in saved and not any(k.endswith(".key.weight") for k in saved)
    r = run_app(app, "train", "--config", cut, "train_stage=3")
    assert r.returncode == 0, r.stderr
    a, b = losses(tmp_path / "whole"), losses(tmp_path / "cut")
    assert len(a) == len(b) == 120
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-6
    want, got = (torch.load(tmp_path / d / "rwkv-1.pth", weights_only=True) for d in ("whole", "cut"))
    assert list(want) == list(got)
    assert max((want[k] - got[k]).abs().max().item() for k in want) <= 1e-6
