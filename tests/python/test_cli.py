"""The app as a user meets it: every bad input ends with one clear line on stderr and a non-zero
exit, never a crash or a hang; SIGINT saves a resumable checkpoint; kill -9 never leaves a newest
checkpoint that cannot be loaded."""
import json
import os
import random
import signal
import subprocess
import time

import pytest
import torch

from conftest import golden

BYTES = str(golden("data/lambada_bytes.bin"))[:-4]
BASE = {
    "data_file": BYTES, "vocab_size": 256, "ctx_len": 64, "n_layer": 2, "n_embd": 64, "micro_bsz": 4,
    "lr_init": 6e-4, "lr_final": 6e-5, "warmup_steps": 10, "weight_decay": 0.001,
    "my_exit_tokens": 1693990, "magic_prime": 26459, "epoch_samples": 160, "epoch_save": 1,
    "random_seed": 1, "device": "cpu",
}


def write_config(path, **overrides):
    cfg = dict(BASE, **overrides)
    path.write_text("".join(f"{k}: {v}\n" for k, v in cfg.items()))
    return path


def run_app(app, *args, timeout=120):
    return subprocess.run([str(app), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def corrupt_copy(tmp_path, name, edit_idx=None, bin_bytes=None):
    idx = bytearray(open(BYTES + ".idx", "rb").read())
    data = open(BYTES + ".bin", "rb").read()
    if edit_idx:
        edit_idx(idx)
    (tmp_path / f"{name}.idx").write_bytes(bytes(idx))
    (tmp_path / f"{name}.bin").write_bytes(data if bin_bytes is None else data[:bin_bytes])
    return tmp_path / name


def bad_cases(tmp_path):
    tiny = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(os.urandom(5000))
    cut = tmp_path / "cut.pth"
    cut.write_bytes(open(tiny, "rb").read()[:100000])
    return {
        "yaml syntax": ("proj_dir: [1, 2\n", [], "YAML error"),
        "unknown key": (None, ["n_embed=3"], "unknown key 'n_embed'"),
        "wrong type": (None, ["ctx_len=abc"], "'ctx_len'"),
        "zero batch": (None, ["micro_bsz=0"], "'micro_bsz'"),
        "negative ctx_len": (None, ["ctx_len=-5"], "'ctx_len'"),
        "zero lr": (None, ["lr_init=0"], "'lr_init'"),
        "n_embd not a multiple of head_size": (None, ["n_embd=100"], "'n_embd'"),
        "magic_prime not prime": (None, ["magic_prime=26458"], "not prime"),
        "magic_prime not 2 mod 3": (None, ["magic_prime=26449"], "not 2 mod 3"),
        "magic_prime out of range": (None, ["magic_prime=1000037"], "does not fit"),
        "missing data": (None, ["data_file=/nonexistent/data"], "cannot open"),
        "bad index magic": (None, [f"data_file={corrupt_copy(tmp_path, 'magic', lambda b: b.__setitem__(0, 88))}"], "bad magic"),
        "bin shorter than its index": (None, [f"data_file={corrupt_copy(tmp_path, 'short', bin_bytes=1000)}"], "shorter than"),
        "token ids >= vocab_size": (None, ["vocab_size=100"], "vocab_size"),
        "unwritable proj_dir": (None, ["proj_dir=/etc/hostname/run"], "'proj_dir'"),
        "checkpoint not a zip": (None, [f"load_model={junk}"], "not a readable torch.save zip"),
        "truncated checkpoint": (None, [f"load_model={cut}"], str(cut)),
        "checkpoint that does not fit": (None, [f"load_model={tiny}"], "does not fit the model"),
        "missing checkpoint": (None, ["load_model=/nonexistent.pth"], "no such file"),
    }


def test_bad_inputs_give_one_clear_line(app, tmp_path):
    for name, (text, overrides, needle) in bad_cases(tmp_path).items():
        cfg = tmp_path / "cfg.yaml"
        if text is None:
            write_config(cfg, proj_dir=tmp_path / "run")
        else:
            cfg.write_text(text)
        r = run_app(app, "train", "--config", cfg, *overrides)
        lines = r.stderr.strip().splitlines()
        assert r.returncode > 0, (name, r.returncode, r.stderr)  # an error exit, not a signal
        assert len(lines) == 1, (name, r.stderr)
        assert needle in lines[0], (name, lines[0])


def test_command_line_errors(app, tmp_path):
    for args, needle in [
        (["nonsense"], "unknown command"),
        (["train"], "missing --config"),
        (["train", "--config"], "needs a value"),
        (["train", "--bogus", "1"], "unknown option --bogus"),
        (["logits", "--model", golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth"), "--tokens", "1,x"], "not an integer"),
        (["logits", "--model", golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth"), "--tokens", "999"], "outside the vocabulary"),
        (["tokenize", "--tokenizer", "bytes", "--input", "/nonexistent.jsonl", "--output", tmp_path / "x"], "cannot open"),
    ]:
        r = run_app(app, *args)
        assert r.returncode > 0 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_every_command_has_help(app):
    r = run_app(app, "--help")
    assert r.returncode == 0
    commands = [l.split()[0] for l in r.stdout.splitlines() if l.startswith("  ")]
    assert {"prepare", "train", "tokenize", "generate", "logits", "convert", "bench", "plot"} <= set(commands)
    for c in commands:
        h = run_app(app, c, "--help")
        assert h.returncode == 0 and "usage: rwkv7 " + c in h.stdout, c
    assert "max_bad_steps" in run_app(app, "train", "--help").stdout  # the keys are listed


def test_tokenize_bad_lines(app, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"text": "good one"}\nnot json\n{"title": "no text"}\n{"text": "\xff\xfe"}\n{"text": "fine"}\n')
    r = run_app(app, "tokenize", "--tokenizer", "bytes", "--input", src, "--output", tmp_path / "out")
    assert r.returncode == 1 and ":2: not a JSON object" in r.stderr
    assert not (tmp_path / "out.bin").exists() and not (tmp_path / "out.idx").exists()  # nothing half-written
    r = run_app(app, "tokenize", "--tokenizer", "bytes", "--input", src, "--output", tmp_path / "out", "--skip-bad-lines")
    assert r.returncode == 0, r.stderr
    assert [l.split(": ", 1)[1] for l in r.stderr.strip().splitlines()] == [
        "not a JSON object (skipped)", 'no "text" field (skipped)', "invalid UTF-8 (skipped)"]
    assert "2 documents, 14 tokens (3 lines skipped)" in r.stdout


def losses(run_dir):
    return [json.loads(l)["loss"] for l in open(run_dir / "metrics.jsonl") if l.startswith('{"step"')]


def interrupt_and_resume_exactly(app, tmp_path, sig, close_console=False):
    """Stop a run with `sig` after 50 steps (its console closed first, if asked), check the saved
    checkpoint, resume it, and hold the 80 losses to an uninterrupted run's (1e-6)."""
    whole = write_config(tmp_path / "whole.yaml", proj_dir=tmp_path / "whole", epoch_limit=2)
    assert run_app(app, "train", "--config", whole).returncode == 0
    cfg = write_config(tmp_path / "cut.yaml", proj_dir=tmp_path / "cut", epoch_limit=2)
    p = subprocess.Popen([str(app), "train", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if close_console:  # `rwkv7 train | head`: the reader is gone, and so is the terminal for stderr
        p.stdout.close()
        p.stderr.close()
    metrics = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(losses(tmp_path / "cut")) < 50):
        time.sleep(0.05)
    p.send_signal(sig)
    assert p.wait(timeout=60) == 0
    name = signal.Signals(sig).name
    assert f"{name}: saved" in open(tmp_path / "cut" / "train_log.txt").read()
    if not close_console:
        assert f"{name}: saved" in p.stdout.read()
    stopped_at = len(losses(tmp_path / "cut"))
    assert 50 <= stopped_at < 80
    assert torch.load(tmp_path / "cut" / "rwkv-1.pth", weights_only=True)["emb.weight"].shape == (256, 64)
    r = run_app(app, "train", "--config", cfg, "train_stage=3", "epoch_limit=1")
    assert r.returncode == 0, r.stderr
    a, b = losses(tmp_path / "whole"), losses(tmp_path / "cut")
    assert len(b) == 80
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-6


@pytest.mark.two_runs
def test_sigint_saves_and_resume_is_exact(app, tmp_path):
    interrupt_and_resume_exactly(app, tmp_path, signal.SIGINT)


def test_kill_9_never_leaves_an_unloadable_newest_checkpoint(app, tmp_path):
    """Kill the run at random moments (many fall inside saves: epoch_samples 8 saves every 2
    steps), then check that the newest rwkv-<n>.pth loads and that the run resumes."""
    cfg = write_config(tmp_path / "k.yaml", proj_dir=tmp_path / "k", epoch_samples=8, n_embd=128)
    rng = random.Random(0)
    for attempt in range(6):
        args = ["train", "--config", str(cfg)] + (["train_stage=3"] if attempt else [])
        p = subprocess.Popen([str(app), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0 + rng.random() * 2.0)
        p.send_signal(signal.SIGKILL)
        p.wait()
        numbered = sorted(int(f[5:-4]) for f in os.listdir(tmp_path / "k")
                          if f.startswith("rwkv-") and f.endswith(".pth") and f[5:-4].isdigit())
        if numbered:
            sd = torch.load(tmp_path / "k" / f"rwkv-{numbered[-1]}.pth", weights_only=True)
            assert "head.weight" in sd
    r = run_app(app, "train", "--config", cfg, "train_stage=3", "epoch_limit=1")
    assert r.returncode == 0, r.stderr


TINY = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")
GENERATE = ["generate", "--model", TINY, "--tokenizer", "bytes", "--prompt", "The cat sat on the",
            "--temperature", "0"]


def test_generate_stops_when_its_output_is_closed(app, tmp_path):
    """`generate ... | head -c 100`: the reader is gone, so the next write fails (SIGPIPE is ignored);
    generate stops with one line naming stdout and a non-zero status instead of running on."""
    p = subprocess.Popen([str(app), *map(str, GENERATE), "--max-tokens", "1000000000"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert len(p.stdout.read(100)) == 100
    p.stdout.close()
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("generate ran on with its stdout closed")
    lines = p.stderr.read().strip().splitlines()
    assert rc == 1 and len(lines) == 1 and "stdout" in lines[0], (rc, lines)

    # the same through a shell pipe, as a user types it
    cmd = " ".join(f"'{a}'" for a in [app, *GENERATE, "--max-tokens", "1000000000"]) + " | head -c 100 >/dev/null"
    r = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "stdout" in r.stderr, r

    # a full disk: the text that could not be written is an error, not rc 0
    with open("/dev/full", "w") as full:
        r = subprocess.run([str(app), *map(str, GENERATE), "--max-tokens", "20"], stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=60)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "stdout" in r.stderr, r.stderr


def test_generate_with_a_tokenizer_too_large_for_the_model_says_so(app):
    vocab = golden("vocab/rwkv_vocab_v20230424.txt")
    r = run_app(app, "generate", "--model", TINY, "--vocab", vocab, "--prompt", "The cat")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "the tokenizer's 65536 ids do not fit the model's vocabulary of 256" in lines[0], lines


def test_model_commands_say_they_take_safetensors(app):
    for command in ("logits", "generate", "eval"):
        h = run_app(app, command, "--help")
        assert h.returncode == 0 and ".safetensors" in h.stdout and ".pth" in h.stdout, (command, h.stdout)


def test_logits_of_a_model_with_nan_is_refused_not_printed(app, tmp_path):
    sd = torch.load(TINY, weights_only=True)
    sd["blocks.0.att.receptance.weight"].fill_(float("nan"))
    model = tmp_path / "nan.pth"
    torch.save(sd, model)
    for out in ([], ["--out", tmp_path / "l.json"]):
        r = run_app(app, "logits", "--model", model, "--tokens", "1,2,3", *out)
        lines = r.stderr.strip().splitlines()
        assert r.returncode > 0 and len(lines) == 1 and str(model) in lines[0], (out, r.stderr)
        assert "nan" not in r.stdout.lower(), r.stdout
        assert not (tmp_path / "l.json").exists()
