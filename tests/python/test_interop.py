"""Python as the real client: torch.load reads what we write, Python runs our op, and BlinkDL's
`rwkv` inference package runs a checkpoint we wrote with the logits that `rwkv7 logits` gives."""
import json
import os
import subprocess

import torch

from conftest import golden


def run(*cmd):
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True)


def test_torch_load_weights_only_reads_our_files(app, tmp_path):
    # the seed's OrderedDict checkpoint (fp32) and a bf16 init, each rewritten by us
    for src in ["train_byte_L2_D128/after-120-steps.pth", "train_world_L2_D64/rwkv-init.pth"]:
        out = tmp_path / "out.pth"
        run(app, "convert", "--in", golden(src), "--out", out)
        ours = torch.load(out, weights_only=True)  # the default, made explicit
        theirs = torch.load(golden(src), weights_only=True)
        assert type(ours) is dict
        assert list(ours) == list(theirs)
        for name, t in theirs.items():
            assert ours[name].dtype == t.dtype, name
            assert torch.equal(ours[name], t), name


def test_dtype_conversion_keeps_values(app, tmp_path):
    out = tmp_path / "bf16.pth"
    run(app, "convert", "--in", golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth"), "--out", out, "--dtype", "bf16")
    ours = torch.load(out)
    theirs = torch.load(golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth"))
    for name, t in theirs.items():
        assert ours[name].dtype == torch.bfloat16
        assert torch.equal(ours[name], t.to(torch.bfloat16)), name


def test_python_runs_the_op_forward_and_backward(ops_library):
    torch.ops.load_library(str(ops_library))
    cases = torch.load(golden("wkv7_cases.pth"))
    for name, c in cases.items():
        inputs = [c[k].clone().requires_grad_(True) for k in "rwkvab"]
        y = torch.ops.rwkv7.wkv7(*inputs)
        (y * c["dy"]).sum().backward()
        assert (y - c["y"]).abs().max() <= 1e-9 * c["y"].abs().max(), name
        for x, g in zip(inputs, ["dr", "dw", "dk", "dv", "da", "db"]):
            assert (x.grad - c[g]).abs().max() <= 1e-9 * c[g].abs().max(), (name, g)


def test_rwkv_package_matches_rwkv7_logits(app, tmp_path):
    # a checkpoint written by this project ...
    model = tmp_path / "tiny.pth"
    run(app, "convert", "--in", golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth"), "--out", model)
    tokens = [34, 105, 110, 32, 116, 104, 101, 32, 98, 101]
    ours = json.loads(run(app, "logits", "--model", model, "--tokens", ",".join(map(str, tokens))).stdout)
    # ... run by BlinkDL's inference package (RNN mode, fp32 on the CPU)
    os.environ["RWKV_V7_ON"] = "1"
    os.environ["RWKV_JIT_ON"] = "0"
    os.environ["RWKV_CUDA_ON"] = "0"
    from rwkv.model import RWKV

    rnn = RWKV(model=str(model)[:-4], strategy="cpu fp32")
    logits, _ = rnn.forward(tokens, None)
    diff = (logits.float() - torch.tensor(ours["last_logits"])).abs().max().item()
    assert diff <= 1e-4, diff
    expected = json.load(open(golden("tiny_rwkv7_834K/expected_logits_quote_in.json")))
    logits3, _ = rnn.forward(tokens[:3], None)
    assert (logits3 - torch.tensor(expected["last_logits"])).abs().max().item() <= 1e-4


def test_torch_load_reads_rwkv_final_of_a_run(app, tmp_path):
    """A short real run (token budget of 5 steps) ends in rwkv-final.pth that torch.load reads."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"proj_dir: {tmp_path}/run\ndata_file: {str(golden('data/lambada_bytes.bin'))[:-4]}\n"
        "vocab_size: 256\nctx_len: 64\nn_layer: 2\nn_embd: 64\nmicro_bsz: 4\nlr_init: 6e-4\n"
        "lr_final: 6e-5\nmy_exit_tokens: 1280\nmagic_prime: 26459\nepoch_samples: 160\n"
        "random_seed: 1\ndevice: cpu\n")
    run(app, "train", "--config", cfg)
    final = torch.load(tmp_path / "run" / "rwkv-final.pth", weights_only=True)
    init = torch.load(tmp_path / "run" / "rwkv-init.pth", weights_only=True)
    assert list(final) == list(init)
    assert final["emb.weight"].shape == (256, 64) and final["emb.weight"].dtype == torch.float32
    assert not torch.equal(final["head.weight"], init["head.weight"])  # it trained
