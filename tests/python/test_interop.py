"""Python as the real client: torch.load reads what we write, Python runs our op, and BlinkDL's
`rwkv` inference package runs a checkpoint we wrote with the logits that `rwkv7 logits` gives."""
import json
import os
import subprocess

import torch

from conftest import golden, rwkv_package


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
    rnn = rwkv_package(model)
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


def test_python_runs_the_state_op_against_rwkv_peft(ops_library):
    """torch.ops.rwkv7.wkv7_state on RWKV-PEFT's fp64 cases: y, the six gradients and the initial
    state's (time_state, shared by the batch: its gradient is the batch sum)."""
    torch.ops.load_library(str(ops_library))
    cases = torch.load(golden("wkv7_state_cases.pth"))
    names = sorted({k.split(".")[0] for k in cases})
    assert len(names) == 3
    for name in names:
        c = {k.split(".", 1)[1]: v for k, v in cases.items() if k.startswith(name + ".")}
        inputs = [c[k].clone().requires_grad_(True) for k in "rwkvab"]
        s0 = c["s"].clone().requires_grad_(True)
        y = torch.ops.rwkv7.wkv7_state(*inputs, s0)
        (y * c["dy"]).sum().backward()
        assert (y - c["y"]).abs().max() <= 1e-9 * c["y"].abs().max(), name
        for x, g in zip(inputs + [s0], ["dr", "dw", "dk", "dv", "da", "db", "ds"]):
            assert (x.grad - c[g]).abs().max() <= 1e-9 * c[g].abs().max(), (name, g)


def test_python_runs_the_state_passing_op_against_rwkv_cuda(ops_library):
    """torch.ops.rwkv7.wkv7_state_passing on the fp64 cases made from BlinkDL/RWKV-CUDA's reference
    (tools/golden/make_wkv7_state_passing_cases.py): y and sT to 1e-9, and the seven gradients of
    sum(y dy) + sum(sT dsT) to 1e-8."""
    torch.ops.load_library(str(ops_library))
    cases = torch.load(golden("wkv7_state_passing_cases.pth"))
    names = sorted({k.split(".")[0] for k in cases})
    assert len(names) == 4
    for name in names:
        c = {k.split(".", 1)[1]: v for k, v in cases.items() if k.startswith(name + ".")}
        inputs = [c[k].clone().requires_grad_(True) for k in "rwkvab"]
        s0 = c["s0"].clone().requires_grad_(True)
        y, sT = torch.ops.rwkv7.wkv7_state_passing(*inputs, s0)
        ((y * c["dy"]).sum() + (sT * c["dsT"]).sum()).backward()
        for got, want in ((y, "y"), (sT, "sT")):
            assert (got - c[want]).abs().max() <= 1e-9 * c[want].abs().max(), (name, want)
        for x, g in zip(inputs + [s0], ["dr", "dw", "dk", "dv", "da", "db", "ds0"]):
            assert (x.grad - c[g]).abs().max() <= 1e-8 * c[g].abs().max(), (name, g)


def _finetune(app, tmp_path, kind_lines):
    """A short fine-tuning run of the tiny model (RWKV-PEFT's settings, 6 steps), its rwkv-0.pth."""
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(
        f"proj_dir: {tmp_path}/run\ndata_file: {str(golden('data/lambada_bytes.bin'))[:-4]}\n"
        f"load_model: {golden('tiny_rwkv7_834K/tiny-rwkv7-834K.pth')}\n"
        "vocab_size: 256\nctx_len: 64\nn_layer: 12\nn_embd: 64\nmicro_bsz: 2\nadam_eps: 1e-8\n"
        "dataload: pad\ndata_shuffle: 0\nepoch_steps: 6\nepoch_count: 1\nlr_schedule: cos\n"
        "random_seed: 1\ndevice: cpu\n" + kind_lines)
    run(app, "train", "--config", cfg)
    return tmp_path / "run" / "rwkv-0.pth"


def test_state_tuning_file_is_rwkv_peft_s_and_runs_in_the_rwkv_package(app, tmp_path):
    """Our state-tuning checkpoint is what RWKV-PEFT writes (names, shapes, dtype), and BlinkDL's
    `rwkv` package, given its time_state as the initial WKV state (state[3i+1], untransposed),
    gives the logits that `rwkv7 logits --state` gives."""
    tuned = _finetune(app, tmp_path, "train_type: state\nlr_init: 1.0\nlr_final: 0.01\n")
    states = torch.load(tuned, weights_only=True)
    assert list(states) == [f"blocks.{i}.att.time_state" for i in range(12)]
    assert all(t.shape == (1, 64, 64) and t.dtype == torch.float32 for t in states.values())
    assert max(t.abs().max().item() for t in states.values()) > 0.1  # it trained
    model = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")
    tokens = [84, 104, 101, 32, 113, 117, 105, 99, 107]
    ours = json.loads(run(app, "logits", "--model", model, "--state", tuned,
                          "--tokens", ",".join(map(str, tokens))).stdout)
    rnn = rwkv_package(model)
    _, state = rnn.forward([0], None)  # the package's state layout, then ours in it
    state = [torch.zeros_like(s) for s in state]
    for i in range(12):
        state[3 * i + 1] = states[f"blocks.{i}.att.time_state"].clone()
    logits, _ = rnn.forward(tokens, state)
    diff = (logits.float() - torch.tensor(ours["last_logits"])).abs().max().item()
    assert diff <= 1e-4, diff
    plain = json.loads(run(app, "logits", "--model", model, "--tokens", ",".join(map(str, tokens))).stdout)
    assert (torch.tensor(plain["last_logits"]) - torch.tensor(ours["last_logits"])).abs().max().item() > 1e-3


def test_lora_file_is_rwkv_peft_s_and_its_merge_runs_in_the_rwkv_package(app, tmp_path):
    """Our LoRA checkpoint holds RWKV-PEFT's keys (lora_A/lora_B of the six adapted layers per block,
    and the LayerNorms); `rwkv7 merge` makes a model the `rwkv` package runs with our logits."""
    tuned = _finetune(app, tmp_path, "peft: lora\nlora_r: 8\nlora_alpha: 32\nlora_dropout: 0\n"
                                     "lr_init: 1e-3\nlr_final: 1e-4\n")
    adapter = torch.load(tuned, weights_only=True)
    want = {f"blocks.{i}.{m}.lora_{x}" for i in range(12) for x in "AB"
            for m in ["att.receptance", "att.key", "att.value", "att.output", "ffn.key", "ffn.value"]}
    assert want <= set(adapter)
    assert {k for k in adapter if k not in want} == {k for k in torch.load(golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth"))
                                                     if ".ln" in k or k.startswith("ln_out")}
    assert adapter["blocks.0.att.key.lora_A"].shape == (8, 64) and adapter["blocks.0.ffn.key.lora_B"].shape == (256, 8)
    merged = tmp_path / "merged.pth"
    run(app, "merge", "--base", golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth"), "--adapter", tuned,
        "--lora-alpha", "32", "--out", merged)
    tokens = [84, 104, 101, 32, 113, 117, 105, 99, 107]
    ours = json.loads(run(app, "logits", "--model", merged, "--tokens", ",".join(map(str, tokens))).stdout)
    rnn = rwkv_package(merged)
    logits, _ = rnn.forward(tokens, None)
    assert (logits.float() - torch.tensor(ours["last_logits"])).abs().max().item() <= 1e-4
