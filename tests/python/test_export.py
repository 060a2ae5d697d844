"""safetensors export and import against Python's own safetensors package: it reads what we
write (tensor for tensor what torch.load reads from the .pth), we read what it writes, and every
command that takes a model takes either format."""
import json
import subprocess

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import golden

TINY = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")


def run(app, *args):
    r = subprocess.run([str(app), *map(str, args)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r


def test_safetensors_package_reads_ours_as_torch_load_reads_the_pth(app, tmp_path):
    for src, dtype in [(TINY, None), (golden("train_world_L2_D64/rwkv-init.pth"), None), (TINY, "bf16")]:
        out = tmp_path / "m.safetensors"
        run(app, "convert", "--in", src, "--out", out, *(["--dtype", dtype] if dtype else []))
        theirs = torch.load(src, weights_only=True)
        ours = load_file(str(out))
        assert list(ours) == list(theirs), "names and order are the seed's"
        for name, t in theirs.items():
            want = t.to(torch.bfloat16) if dtype == "bf16" else t
            assert ours[name].dtype == want.dtype and torch.equal(ours[name], want), name


@pytest.mark.two_runs
def test_we_read_what_the_safetensors_package_writes(app, tmp_path):
    theirs = torch.load(TINY, weights_only=True)
    save_file({k: v.contiguous() for k, v in theirs.items()}, str(tmp_path / "py.safetensors"), metadata={"format": "pt"})
    run(app, "convert", "--in", tmp_path / "py.safetensors", "--out", tmp_path / "back.pth")
    back = torch.load(tmp_path / "back.pth", weights_only=True)
    assert set(back) == set(theirs)
    for name, t in theirs.items():
        assert torch.equal(back[name], t), name
    # logits and training take it too, and give what the .pth gives
    a = json.loads(run(app, "logits", "--model", TINY, "--tokens", "34,105,110").stdout)
    b = json.loads(run(app, "logits", "--model", tmp_path / "py.safetensors", "--tokens", "34,105,110").stdout)
    assert a == b


def test_training_starts_from_a_safetensors_checkpoint(app, tmp_path):
    init = tmp_path / "init.safetensors"
    run(app, "convert", "--in", golden("train_byte_L2_D128/rwkv-init.pth"), "--out", init)
    ref = json.load(open(golden("train_byte_L2_D128/reference.json")))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"proj_dir: {tmp_path}/run\ndata_file: {str(golden('data/lambada_bytes.bin'))[:-4]}\nvocab_size: 256\n"
        "ctx_len: 64\nn_layer: 2\nn_embd: 128\nmicro_bsz: 4\nlr_init: 6e-4\nlr_final: 6e-5\nwarmup_steps: 10\n"
        "weight_decay: 0.001\nmy_exit_tokens: 1693990\nmagic_prime: 26459\nepoch_samples: 160\nepoch_limit: 1\n"
        f"device: cpu\nload_model: {init}\n")
    run(app, "train", "--config", cfg)
    first = json.loads(open(tmp_path / "run" / "metrics.jsonl").readline())
    assert abs(first["loss"] - ref["steps"][0]["loss"]) <= 1e-5
