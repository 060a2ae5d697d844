"""Issue 23's faults of the fine-tuning surface, as a hostile user met them: a run resumed on
another base or PiSSA start, adapters of another kind or model merged or loaded, outputs that
would replace their inputs, non-finite and overflowing values, keys that would be ignored, counts
that overflow. Each refusal is one line naming the file, key or number; nothing is written over.
Small runs of the tiny model (12 layers, C 64) on the byte-level LAMBADA data, a few steps each."""
import os
import shutil
import signal
import subprocess
import time

import pytest
import torch

from conftest import golden
from test_cli import BYTES, losses, run_app
from test_faults import one_error_line

TINY = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")

FT = {
    "data_file": BYTES, "load_model": TINY, "vocab_size": 256, "ctx_len": 64, "n_layer": 12, "n_embd": 64,
    "micro_bsz": 2, "adam_eps": 1e-8, "lr_init": 1e-3, "lr_final": 1e-4, "dataload": "pad", "data_shuffle": 1,
    "epoch_steps": 4, "epoch_count": 2, "lr_schedule": "cos", "random_seed": 3, "device": "cpu", "threads": 1,
}
LORA = {"peft": "lora", "lora_r": 8, "lora_alpha": 32, "lora_dropout": 0}
PISSA = {"peft": "pissa", "pissa_r": 4}


def config(tmp_path, name, **keys):
    cfg = dict(FT, proj_dir=tmp_path / name, **keys)
    path = tmp_path / f"{name}.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in cfg.items()))
    return path


def train(app, cfg, *overrides, ok=True):
    r = run_app(app, "train", "--config", cfg, *overrides, timeout=300)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def other_base(tmp_path):
    """The tiny model with one weight changed: another base of the same shape."""
    d = torch.load(TINY, weights_only=True)
    d["blocks.3.att.key.weight"] = d["blocks.3.att.key.weight"] + 0.01
    path = tmp_path / "other-base.pth"
    torch.save(d, path)
    return path


# ---- 1. a fine-tuning run resumed from something else than it started from ----

def test_a_lora_resume_on_another_base_or_alpha_is_refused(app, tmp_path):
    cfg = config(tmp_path, "lora", epoch_limit=1, **LORA)
    train(app, cfg)
    r = train(app, cfg, "train_stage=3", f"load_model={other_base(tmp_path)}", ok=False)
    one_error_line(r, "rwkv-0.state.pth", "another base model", "other-base.pth")
    r = train(app, cfg, "train_stage=3", "lora_alpha=16", ok=False)
    one_error_line(r, "rwkv-0.state.pth", "lora_alpha 32", "16")
    r = train(app, cfg, "train_stage=3", "lora_r=4", ok=False)
    one_error_line(r, "rwkv-0.state.pth", "rank 8", "4")
    train(app, cfg, "train_stage=3")  # its own base and settings go on


def test_a_pissa_resume_beside_another_runs_init_is_refused(app, tmp_path):
    a = config(tmp_path, "a", epoch_limit=1, **PISSA)
    b = config(tmp_path, "b", epoch_limit=1, **dict(PISSA, random_seed=4))
    train(app, a)
    train(app, b)
    shutil.copy(tmp_path / "b" / "init_pissa.pth", tmp_path / "a" / "init_pissa.pth")
    r = train(app, a, "train_stage=3", ok=False)
    one_error_line(r, "rwkv-0.state.pth", "init_pissa.pth", "not the PiSSA start")


def test_a_switch_of_adapter_kind_on_resume_names_both(app, tmp_path):
    train(app, config(tmp_path, "lora", epoch_limit=1, **LORA))
    r = train(app, config(tmp_path, "lora", **PISSA), "train_stage=3", ok=False)
    one_error_line(r, "rwkv-0.state.pth", "LoRA fine-tuning run", "PiSSA")


def test_lora_load_of_a_pissa_adapter_or_another_runs_init_is_refused(app, tmp_path):
    train(app, config(tmp_path, "p1", epoch_limit=1, **PISSA))
    train(app, config(tmp_path, "p2", epoch_limit=1, **dict(PISSA, random_seed=4)))
    adapter = tmp_path / "p1" / "rwkv-0.pth"
    r = train(app, config(tmp_path, "as-lora", lora_load=adapter, **LORA), ok=False)
    one_error_line(r, "'lora_load'", str(adapter), "PiSSA adapter", "peft: pissa")
    r = train(app, config(tmp_path, "mixed", lora_load=adapter, pissa_init=tmp_path / "p2" / "init_pissa.pth",
                          **PISSA), ok=False)
    one_error_line(r, "'pissa_init'", "p2/init_pissa.pth", "not the PiSSA start")
    # the adapter's own start is accepted
    train(app, config(tmp_path, "right", lora_load=adapter, pissa_init=tmp_path / "p1" / "init_pissa.pth",
                      epoch_limit=1, **PISSA))


def test_overwrite_removes_the_old_runs_pissa_start(app, tmp_path):
    train(app, config(tmp_path, "run", epoch_limit=1, **PISSA))
    assert (tmp_path / "run" / "init_pissa.pth").exists()
    train(app, config(tmp_path, "run", epoch_limit=1, overwrite=1, **LORA))
    assert not (tmp_path / "run" / "init_pissa.pth").exists()
    r = train(app, config(tmp_path, "run", **PISSA), "train_stage=3", ok=False)
    one_error_line(r, "LoRA fine-tuning run", "PiSSA")


# ---- 2-5. merge and convert ----

def merge(app, *args):
    return run_app(app, "merge", *args, timeout=300)


def test_merging_a_pissa_adapter_as_lora_is_refused(app, tmp_path):
    train(app, config(tmp_path, "p", epoch_limit=1, **PISSA))
    adapter = tmp_path / "p" / "rwkv-0.pth"
    for extra in ([], ["--lora-alpha", "32"]):
        r = merge(app, "--base", TINY, "--adapter", adapter, "--out", tmp_path / "m.pth", *extra)
        one_error_line(r, str(adapter), "PiSSA adapter", "--pissa-init")
    assert not (tmp_path / "m.pth").exists()
    # without its training state beside it, its folder's init_pissa.pth still tells
    os.remove(tmp_path / "p" / "rwkv-0.state.pth")
    r = merge(app, "--base", TINY, "--adapter", adapter, "--out", tmp_path / "m.pth", "--lora-alpha", "32")
    one_error_line(r, "its folder holds", "init_pissa.pth")
    r = merge(app, "--base", TINY, "--adapter", adapter, "--out", tmp_path / "m.pth", "--pissa-init",
              tmp_path / "p" / "init_pissa.pth")
    assert r.returncode == 0, r.stderr


def test_an_adapter_or_state_of_fewer_layers_is_refused(app, tmp_path):
    train(app, config(tmp_path, "lora", epoch_limit=1, **LORA))
    adapter = torch.load(tmp_path / "lora" / "rwkv-0.pth", weights_only=True)
    two = {k: v for k, v in adapter.items() if k.startswith(("blocks.0.", "blocks.1."))}
    torch.save(two, tmp_path / "two-layers.pth")
    r = merge(app, "--base", TINY, "--adapter", tmp_path / "two-layers.pth", "--out", tmp_path / "m.pth",
              "--lora-alpha", "32")
    one_error_line(r, "two-layers.pth", "2 of the 12 layers", "not layer 2")
    # a tuned state of 2 layers: merge refuses it, and a file that holds one anyway is no model
    states = {f"blocks.{i}.att.time_state": torch.zeros(1, 64, 64) for i in range(2)}
    torch.save(states, tmp_path / "state2.pth")
    r = merge(app, "--base", TINY, "--adapter", tmp_path / "state2.pth", "--out", tmp_path / "m.pth")
    one_error_line(r, "state2.pth", "2 of the 12 layers")
    base = torch.load(TINY, weights_only=True)
    torch.save(dict(base, **states), tmp_path / "merged2.pth")
    r = run_app(app, "logits", "--model", tmp_path / "merged2.pth", "--tokens", "1,2,3")
    one_error_line(r, "merged2.pth", "blocks.0.att.time_state", "no blocks.2.att.time_state")
    assert not (tmp_path / "m.pth").exists()


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(app, tmp_path):
    train(app, config(tmp_path, "lora", epoch_limit=1, **LORA))
    base = tmp_path / "base.pth"
    shutil.copy(TINY, base)
    os.link(base, tmp_path / "hardlink.pth")
    adapter = tmp_path / "lora" / "rwkv-0.pth"
    before = {p: p.read_bytes() for p in (base, adapter)}
    for out in (base, adapter, tmp_path / "hardlink.pth"):
        r = merge(app, "--base", base, "--adapter", adapter, "--out", out, "--lora-alpha", "32")
        one_error_line(r, "--out", "is the input")
    r = run_app(app, "convert", "--in", base, "--out", base, "--dtype", "bf16")
    one_error_line(r, "--out", "is the input")
    r = run_app(app, "convert", "--in", base, "--out", tmp_path / "hardlink.pth")
    one_error_line(r, "--out", "is the input")
    assert {p: p.read_bytes() for p in before} == before


def test_non_finite_and_overflowing_values_are_refused(app, tmp_path):
    train(app, config(tmp_path, "lora", epoch_limit=1, **LORA))
    adapter = torch.load(tmp_path / "lora" / "rwkv-0.pth", weights_only=True)
    adapter["blocks.5.ffn.key.lora_B"][3, 1] = float("nan")
    torch.save(adapter, tmp_path / "nan-adapter.pth")
    r = merge(app, "--base", TINY, "--adapter", tmp_path / "nan-adapter.pth", "--out", tmp_path / "m.pth",
              "--lora-alpha", "32")
    one_error_line(r, "nan-adapter.pth", "blocks.5.ffn.key.lora_B", "nan")
    base = torch.load(TINY, weights_only=True)
    base["head.weight"][0, 0] = 1e6
    torch.save(base, tmp_path / "big.pth")
    r = run_app(app, "convert", "--in", tmp_path / "big.pth", "--out", tmp_path / "big16.pth", "--dtype", "fp16")
    one_error_line(r, "big.pth", "head.weight", "1e+06", "Half")
    base["head.weight"][0, 0] = float("inf")
    torch.save(base, tmp_path / "inf.pth")
    r = run_app(app, "convert", "--in", tmp_path / "inf.pth", "--out", tmp_path / "x.safetensors")
    one_error_line(r, "inf.pth", "head.weight", "inf")
    assert not any((tmp_path / n).exists() for n in ("m.pth", "big16.pth", "x.safetensors"))
    assert run_app(app, "convert", "--in", TINY, "--out", tmp_path / "ok16.pth", "--dtype", "fp16").returncode == 0


# ---- 6. a weight of an integer dtype ----

def test_a_weight_of_an_integer_dtype_is_refused(app, tmp_path):
    base = torch.load(TINY, weights_only=True)
    base["blocks.2.ffn.value.weight"] = base["blocks.2.ffn.value.weight"].view(torch.int32)  # same bytes
    torch.save(base, tmp_path / "int.pth")
    assert run_app(app, "convert", "--in", tmp_path / "int.pth", "--out", tmp_path / "int.safetensors").returncode == 0
    for path in ("int.pth", "int.safetensors"):
        r = run_app(app, "logits", "--model", tmp_path / path, "--tokens", "1,2,3")
        one_error_line(r, path, "blocks.2.ffn.value.weight", "Int", "float")


# ---- 7-9. keys that would be ignored, counts that overflow ----

def test_train_parts_that_match_nothing_are_refused_and_lists_alike(app, tmp_path):
    for parts in ("[foo]", "[ln, emb, foo]", "[time, ln]"):
        r = train(app, config(tmp_path, "bad", train_parts=parts, **LORA), ok=False)
        one_error_line(r, "'train_parts'", "'foo'" if "foo" in parts else "'time'")
    trained = {}
    for name, parts in (("list", "[ln, emb]"), ("string", "'ln, emb'")):
        r = train(app, config(tmp_path, name, train_parts=parts, epoch_limit=1, **LORA))
        trained[name] = [l for l in r.stdout.splitlines() if "parameters trained" in l]
        keys = torch.load(tmp_path / name / "rwkv-0.pth", weights_only=True)
        assert "emb.weight" in keys and "blocks.0.ln1.weight" in keys
    assert trained["list"] == trained["string"]


def test_counts_that_overflow_are_refused(app, tmp_path):
    r = train(app, config(tmp_path, "big", epoch_steps=4611686018427387904, **LORA), ok=False)
    one_error_line(r, "'epoch_steps'", "4611686018427387904", "64-bit")
    assert not (tmp_path / "big").exists() or not any((tmp_path / "big").glob("rwkv-*.pth"))


def test_fine_tuning_keys_in_a_full_training_run_are_refused(app, tmp_path):
    from test_cli import write_config
    cfg = write_config(tmp_path / "full.yaml", proj_dir=tmp_path / "full")
    for key, value, needs in (("data_shuffle", 0, "dataload: pad"), ("lora_r", 16, "peft: lora"),
                              ("train_parts", "emb", "peft: lora, disha or pissa"), ("pissa_r", 4, "peft: pissa"),
                              ("disha_r", 8, "peft: disha"), ("lora_dropout", 0.1, "peft: lora")):
        r = run_app(app, "train", "--config", cfg, f"{key}={value}")
        one_error_line(r, f"'{key}'", needs)


# ---- 14. LoRA's dropout on a resume inside a mini-epoch ----

@pytest.mark.two_runs
def test_a_lora_run_with_dropout_resumes_exactly_inside_a_mini_epoch(app, tmp_path):
    keys = dict(LORA, lora_dropout=0.05, epoch_steps=30, ctx_len=128)
    whole = config(tmp_path, "whole", **keys)
    train(app, whole)
    cut = config(tmp_path, "cut", **keys)
    p = subprocess.Popen([str(app), "train", "--config", str(cut)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 120
    metrics = tmp_path / "cut" / "metrics.jsonl"
    while time.time() < deadline and (not metrics.exists() or len(losses(tmp_path / "cut")) < 35):
        time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 0
    stopped_at = len(losses(tmp_path / "cut"))
    assert 35 <= stopped_at < 60, stopped_at
    r = train(app, cut, "train_stage=3")
    assert "exact resume" in r.stdout and "redrawn" not in r.stdout, r.stdout
    a, b = losses(tmp_path / "whole"), losses(tmp_path / "cut")
    assert len(a) == len(b) == 60
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-6


# ---- 15. messages that misled ----

def test_files_of_the_wrong_kind_say_what_they_are(app, tmp_path):
    from test_cli import write_config
    full = write_config(tmp_path / "full.yaml", proj_dir=tmp_path / "full", epoch_save=1, my_exit_tokens=40000)
    assert run_app(app, "train", "--config", full, timeout=300).returncode == 0
    # a fine-tuning resume in a full-training folder
    r = train(app, config(tmp_path, "full", **LORA), "train_stage=3", ok=False)
    one_error_line(r, "'train_stage'", "is a whole model", "new proj_dir")
    # a LoRA folder resumed without peft
    train(app, config(tmp_path, "lora", epoch_limit=1, **LORA))
    r = train(app, config(tmp_path, "lora"), "train_stage=3", ok=False)
    one_error_line(r, "rwkv-0.pth", "only fine-tuning tensors", "peft")
    # an adapter as a model
    r = run_app(app, "logits", "--model", tmp_path / "lora" / "rwkv-0.pth", "--tokens", "1,2")
    one_error_line(r, "rwkv-0.pth", "it is an adapter", "rwkv7 merge")


# ---- 17. magic_prime: 0 ----

def test_magic_prime_zero_takes_the_seeds_rule_and_prepare_and_bench_need_none(app, tmp_path):
    from test_cli import write_config
    cfg = write_config(tmp_path / "cfg.yaml", proj_dir=tmp_path / "run", magic_prime=0, epoch_limit=1,
                       epoch_samples=16)
    r = run_app(app, "train", "--config", cfg, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "magic_prime: 26459 (the seed's rule" in r.stdout  # the value the tests give by hand
    assert run_app(app, "prepare", "--config", cfg, "proj_dir=" + str(tmp_path / "p")).returncode == 0
    r = run_app(app, "bench", "--config", cfg, "--steps", "1")
    assert r.returncode == 0, r.stderr


# ---- 19. what the console says ----

def test_the_console_shows_validation_and_a_finished_run(app, tmp_path):
    cfg = config(tmp_path, "lora", val_data_file=BYTES, val_samples=2, **LORA)
    r = train(app, cfg)
    assert r.stdout.count("validation loss") == 2, r.stdout
    r = train(app, cfg, "train_stage=3")
    assert "had already finished" in r.stdout and "after 0 steps" not in r.stdout, r.stdout


def test_the_time_left_after_a_resume_counts_this_processs_steps(app, tmp_path):
    """The progress line's estimate from the resumed process's own steps: 20 steps left at step 39
    take about 20 step times (before: the earlier run's 30 steps were counted as taken in this
    process's time, and the estimate was a quarter of that)."""
    import json
    import re
    cfg = config(tmp_path, "run", epoch_steps=30, ctx_len=512, **LORA)
    train(app, cfg, "epoch_limit=1")
    r = train(app, cfg, "train_stage=3")
    line = next(l for l in r.stdout.splitlines() if l.startswith("epoch 1 step 39 "))
    h, m, s = map(int, re.search(r"left (\d+):(\d+):(\d+)", line).groups())
    steps = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
    per_step = sum(x["step_ms"] for x in steps[31:40]) / 9 / 1e3  # this process's, past its first
    want = 20 * per_step
    assert 0.5 * want - 1 <= 3600 * h + 60 * m + s <= 2 * want + 1, (line, want)


def test_a_signal_to_another_rank_is_named_as_it_was(app, tmp_path):
    """SIGTERM to rank 1 of 2: rank 0 saves and logs "SIGTERM" (it logged "SIGINT", its own
    signal number being 0)."""
    from test_distributed import ranks
    from test_cli import write_config
    cfg = write_config(tmp_path / "cfg.yaml", proj_dir=tmp_path / "run", micro_bsz=2, threads=1)
    procs = ranks(app, cfg, 2)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not metrics.exists() or len(losses(tmp_path / "run")) < 5):
        time.sleep(0.02)
    procs[1].send_signal(signal.SIGTERM)
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "SIGTERM: saved" in outs[0][0], outs[0]
    assert "SIGTERM" in (tmp_path / "run" / "train_log.txt").read_text()


def test_a_directory_given_as_a_file_is_refused(app, tmp_path):
    """(13) tokenize read a directory as an empty input and wrote 0 documents; --vocab a directory
    said "no single-byte token for byte 0"."""
    folder = tmp_path / "folder"
    folder.mkdir()
    r = run_app(app, "tokenize", "--tokenizer", "bytes", "--input", folder, "--output", tmp_path / "out")
    one_error_line(r, str(folder), "is a directory")
    r = run_app(app, "tokenize", "--vocab", folder, "--input", folder, "--output", tmp_path / "out")
    one_error_line(r, str(folder), "is a directory, not a vocabulary file")
    assert not list(tmp_path.glob("out*"))


# ---- what a hostile run found after the first fixes ----

def test_logits_eval_and_tokenize_never_write_over_an_input(app, tmp_path):
    model = tmp_path / "m.pth"
    shutil.copy(TINY, model)
    before = model.read_bytes()
    r = run_app(app, "logits", "--model", model, "--tokens", "1,2", "--out", model)
    one_error_line(r, "--out", "is the input")
    docs = tmp_path / "l.jsonl"
    docs.write_text('{"text": "a b c"}\n')
    for out in (model, docs):
        r = run_app(app, "eval", "--model", model, "--task", "lambada", "--input", docs, "--tokenizer", "bytes",
                    "--out", out)
        one_error_line(r, "--out", "is the input")
    shutil.copy(docs, tmp_path / "t.bin")
    r = run_app(app, "tokenize", "--tokenizer", "bytes", "--input", tmp_path / "t.bin", "--output", tmp_path / "t")
    one_error_line(r, "--output", "is the input")
    assert model.read_bytes() == before and docs.read_text() == '{"text": "a b c"}\n'


def test_a_base_changed_in_the_middle_or_a_weights_only_resume_is_still_checked(app, tmp_path):
    cfg = config(tmp_path, "lora", epoch_limit=1, **LORA)
    train(app, cfg)
    d = torch.load(TINY, weights_only=True)
    w = d["head.weight"].reshape(-1)
    w[8000] += 0.5  # far from the first and last 4096 elements
    torch.save(d, tmp_path / "mid.pth")
    r = train(app, cfg, "train_stage=3", f"load_model={tmp_path / 'mid.pth'}", ok=False)
    one_error_line(r, "rwkv-0.state.pth", "another base model")
    r = train(app, cfg, "train_stage=3", "exact_resume=0", "lora_alpha=16", ok=False)
    one_error_line(r, "rwkv-0.state.pth", "lora_alpha 32")


def test_a_pissa_adapter_behind_a_link_and_integer_adapters_are_refused(app, tmp_path):
    train(app, config(tmp_path, "p", epoch_limit=1, **PISSA))
    (tmp_path / "moved").mkdir()
    link = tmp_path / "moved" / "link.pth"
    link.symlink_to(tmp_path / "p" / "rwkv-0.pth")
    r = merge(app, "--base", TINY, "--adapter", link, "--out", tmp_path / "m.pth", "--lora-alpha", "4")
    one_error_line(r, "PiSSA adapter")
    train(app, config(tmp_path, "lora", epoch_limit=1, **LORA))
    adapter = torch.load(tmp_path / "lora" / "rwkv-0.pth", weights_only=True)
    adapter["blocks.1.att.key.lora_A"] = adapter["blocks.1.att.key.lora_A"].view(torch.int32)
    torch.save(adapter, tmp_path / "int.pth")
    r = merge(app, "--base", TINY, "--adapter", tmp_path / "int.pth", "--out", tmp_path / "m.pth", "--lora-alpha", "32")
    one_error_line(r, "int.pth", "blocks.1.att.key.lora_A", "float")
    r = train(app, config(tmp_path, "from-int", lora_load=tmp_path / "int.pth", **LORA), ok=False)
    one_error_line(r, "int.pth", "blocks.1.att.key.lora_A", "float")


def test_an_empty_or_hex_integer_is_refused(app, tmp_path):
    cfg = config(tmp_path, "lora", **LORA)
    for value in ("epoch_steps=", "exact_resume=", "lora_r=0x10"):
        r = train(app, cfg, value, ok=False)
        one_error_line(r, f"'{value.split('=')[0]}'", "expected an integer")
