"""`rwkv7 eval --task lambada` against an independent computation of the same numbers with
BlinkDL's `rwkv` package (its own forward pass and, for the world vocabulary, its own tokenizer),
RWKV-LM's method: context [0] + encode(src), target encode(" " + last), the target's summed log
probability and whether every target token is the argmax."""
import json
import math
import os
import subprocess

import numpy as np
import pytest
import torch

from conftest import DATA, golden, rwkv_package
from test_cli import run_app, write_config


def lambada_jsonl(path, limit):
    """The LAMBADA texts, rebuilt from the golden byte tokens (a 0 after each text)."""
    tokens = np.fromfile(golden("data/lambada_bytes.bin"), dtype=np.uint16)
    texts, cur = [], []
    for t in tokens:
        if t == 0:
            texts.append(bytes(cur).decode("utf-8"))
            cur = []
            if len(texts) == limit:
                break
        else:
            cur.append(int(t))
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return texts


def reference_score(rnn, texts, encode):
    log_sum, correct = 0.0, 0
    for text in texts:
        src, last = text.rsplit(" ", 1)
        ctx, tgt = [0] + encode(src), encode(" " + last)
        logits, _ = rnn.forward(ctx + tgt[:-1], None, full_output=True)
        logp = torch.log_softmax(logits.float(), -1)
        pos = [len(ctx) - 1 + j for j in range(len(tgt))]
        log_sum += sum(logp[p, t].item() for p, t in zip(pos, tgt))
        correct += all(logp[p].argmax().item() == t for p, t in zip(pos, tgt))
    n = len(texts)
    return {"n": n, "ppl": math.exp(-log_sum / n), "correct": correct}


def ours(app, model, jsonl, *extra):
    r = subprocess.run([str(app), "eval", "--model", str(model), "--task", "lambada", "--input", str(jsonl), *extra],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    summary, js = r.stdout.strip().splitlines()
    assert summary.startswith("LAMBADA: n ")
    return json.loads(js)


def greedy_documents(rnn, prompts):
    """Texts whose last word is the model's own greedy continuation (so it is predicted right):
    the weak tiny model gets no LAMBADA word right, and accuracy must be tested on something."""
    docs = []
    for prompt in prompts:
        out, state = rnn.forward([0] + list(prompt.encode()), None)
        cont = b""
        for _ in range(40):
            t = int(out.argmax())
            cont += bytes([t])
            out, state = rnn.forward([t], state)
        text = (prompt.encode() + cont).decode("utf-8", "ignore")
        words = text[len(prompt):].split(" ")
        if len(words) >= 3 and words[1]:  # prompt + cont up to the end of its second word
            docs.append(prompt + " ".join(words[:2]))
    return docs


def expect_bytes_scores_of_the_package(app, model, tmp_path, n_lambada, prompts, min_correct):
    """`n_lambada` LAMBADA texts plus texts ending in the model's own greedy word after each prompt
    (so that accuracy is tested): our eval (bytes) against the rwkv package's, 1e-4 on ppl, acc
    exactly. Returns our result."""
    texts = lambada_jsonl(tmp_path / "l.jsonl", n_lambada)
    rnn = rwkv_package(model)
    texts += greedy_documents(rnn, prompts)
    (tmp_path / "l.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    ref = reference_score(rnn, texts, lambda s: list(s.encode("utf-8")))
    assert ref["correct"] >= min_correct, ref
    got = ours(app, model, tmp_path / "l.jsonl", "--tokenizer", "bytes")
    assert got["n"] == ref["n"] == len(texts)
    assert abs(got["ppl"] - ref["ppl"]) <= 1e-4 * ref["ppl"], (got, ref)
    assert got["correct"] == ref["correct"], (got, ref)
    return got


def test_bytes_tokenizer_on_the_tiny_model(app, tmp_path):
    model = tmp_path / "tiny.pth"
    subprocess.run([str(app), "convert", "--in", golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth"), "--out", model], check=True)
    got = expect_bytes_scores_of_the_package(app, model, tmp_path, 60, ["She opened the door and",
                                             "In the morning the", "He said that the"], min_correct=2)
    # padding never changes a score: --batch-tokens 1 runs every document alone, one token at a time
    # (windows of 1 token carrying the state, no padding), and gives the same numbers
    alone = ours(app, model, tmp_path / "l.jsonl", "--tokenizer", "bytes", "--batch-tokens", "1")
    assert abs(alone["log_prob_sum"] - got["log_prob_sum"]) <= 1e-5 * abs(got["log_prob_sum"])
    assert alone["correct"] == got["correct"]


def test_world_tokenizer(app, tmp_path):
    from rwkv.rwkv_tokenizer import TRIE_TOKENIZER
    model = tmp_path / "world.pth"
    subprocess.run([str(app), "convert", "--in", golden("train_world_L2_D64/rwkv-init.pth"), "--out", model,
                    "--dtype", "fp32"], check=True)
    vocab = DATA / "vocab" / "rwkv_vocab_v20230424.txt"
    texts = lambada_jsonl(tmp_path / "l.jsonl", 12)
    tok = TRIE_TOKENIZER(str(vocab))
    ref = reference_score(rwkv_package(model), texts, tok.encode)
    r = subprocess.run([str(app), "eval", "--model", str(model), "--task", "lambada", "--input", str(tmp_path / "l.jsonl"),
                        "--vocab", str(vocab), "--out", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = json.load(open(tmp_path / "r.json"))
    assert got["n"] == 12
    assert abs(got["ppl"] - ref["ppl"]) <= 1e-4 * ref["ppl"], (got, ref)
    assert got["correct"] == ref["correct"]


def test_a_checkpoint_our_trainer_writes(app, tmp_path):
    # a short byte-level run (L2 D64, ctx_len 32, 24 steps): its rwkv-0.pth, scored by us and by the rwkv package
    run = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", proj_dir=run, ctx_len=32, magic_prime=52919, epoch_samples=96,
                       epoch_limit=1, warmup_steps=4)
    r = run_app(app, "train", "--config", cfg, timeout=300)
    assert r.returncode == 0, r.stderr
    model = run / "rwkv-0.pth"
    assert model.exists(), os.listdir(run)
    sd = torch.load(model, weights_only=True)
    assert sd["emb.weight"].shape == (256, 64) and sd["emb.weight"].dtype == torch.float32
    expect_bytes_scores_of_the_package(app, model, tmp_path, 20, ["She opened the door and", "In the morning the",
                                       "He said that the", "The man and the", "It was a"], min_correct=1)


@pytest.mark.two_runs
def test_generate_and_eval_take_a_safetensors_model(app, tmp_path):
    pth = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")
    st = tmp_path / "x.safetensors"
    subprocess.run([str(app), "convert", "--in", pth, "--out", st], check=True, capture_output=True)
    for sampling in (["--temperature", "0"], ["--temperature", "1.0", "--top-p", "0.9", "--seed", "7"]):
        outs = []
        for model in (pth, st):
            # bytes, not text: the tiny model's sampled bytes are not always UTF-8
            r = subprocess.run([str(app), "generate", "--model", str(model), "--tokenizer", "bytes", "--prompt",
                                "The cat sat on the", "--max-tokens", "40", *sampling], capture_output=True, timeout=120)
            assert r.returncode == 0, r.stderr
            outs.append(r.stdout)
        assert outs[0].startswith(b"The cat sat on the") and len(outs[0]) > 30, outs
        assert outs[0] == outs[1], (sampling, outs)
    lambada_jsonl(tmp_path / "l.jsonl", 6)
    a, b = (ours(app, m, tmp_path / "l.jsonl", "--tokenizer", "bytes") for m in (pth, st))
    for r in (a, b):
        del r["model"], r["seconds"]
    assert a["n"] == 6 and a == b, (a, b)


@pytest.mark.two_runs
def test_generate_and_eval_from_a_tuned_state(app, tmp_path):
    """`--state S.pth` (RWKV-PEFT's state-tuning file, from its golden run) runs the base from the
    tuned states: generate and eval give what the base merged with the state gives (another path:
    the merged model carries time_state as a parameter), and not what the plain base gives."""
    base = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")
    state = golden("peft/state/rwkv-0.pth")
    merged = tmp_path / "merged.pth"
    subprocess.run([str(app), "merge", "--base", base, "--adapter", state, "--out", merged], check=True,
                   capture_output=True)
    runs = {"state": ["--model", str(base), "--state", str(state)], "merged": ["--model", str(merged)],
            "plain": ["--model", str(base)]}
    texts = {}
    for name, model in runs.items():
        r = subprocess.run([str(app), "generate", *model, "--tokenizer", "bytes", "--prompt", "The cat sat on the",
                            "--max-tokens", "60", "--temperature", "1.0", "--top-p", "0.9", "--seed", "7"],
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        texts[name] = r.stdout
    assert texts["state"] == texts["merged"] != texts["plain"], texts
    lambada_jsonl(tmp_path / "l.jsonl", 12)
    scores = {}
    for name, model in runs.items():
        r = subprocess.run([str(app), "eval", *model, "--task", "lambada", "--input", str(tmp_path / "l.jsonl"),
                            "--tokenizer", "bytes"], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        scores[name] = json.loads(r.stdout.strip().splitlines()[1])
    assert scores["state"]["n"] == 12
    assert abs(scores["state"]["log_prob_sum"] - scores["merged"]["log_prob_sum"]) <= 1e-5 * abs(
        scores["merged"]["log_prob_sum"]), scores
    assert scores["state"]["correct"] == scores["merged"]["correct"]
    assert abs(scores["state"]["log_prob_sum"] - scores["plain"]["log_prob_sum"]) > 1e-3, scores


def test_bad_lines_name_their_line_or_are_skipped_and_counted(app, tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "a good line"}\n{"title": "x"}\n{"text": "nospace"}\n{"text": "ends with "}\n'
                   '{"text": "another good one"}\n')
    model = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")
    r = subprocess.run([str(app), "eval", "--model", str(model), "--task", "lambada", "--input", str(src),
                        "--tokenizer", "bytes"], capture_output=True, text=True)
    assert r.returncode == 1 and "bad.jsonl:2:" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    got = ours(app, model, src, "--tokenizer", "bytes", "--skip-bad-lines")
    assert got["n"] == 2 and got["skipped"] == 3


def strict_json(text):
    """json.loads that refuses NaN and Infinity (Python accepts them; JSON does not)."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def joined_lambada(tmp_path, n_short, n_joined):
    """`n_short` LAMBADA texts, then one long document: the next `n_joined` texts joined by spaces."""
    texts = lambada_jsonl(tmp_path / "all.jsonl", n_short + n_joined)
    return texts[:n_short] + [" ".join(texts[n_short:])]


def world_model(app, tmp_path, layers=2):
    """The golden world-vocabulary init model (L2 D64, 65536 ids) in fp32, cut to its first `layers` layers."""
    sd = torch.load(golden("train_world_L2_D64/rwkv-init.pth"), weights_only=True)
    sd = {k: v.float() for k, v in sd.items() if not k.startswith("blocks.") or int(k.split(".")[1]) < layers}
    torch.save(sd, tmp_path / f"world-L{layers}.pth")
    return tmp_path / f"world-L{layers}.pth"


def test_a_document_longer_than_batch_tokens_runs_in_windows_with_the_same_numbers(app, tmp_path):
    """A document longer than --batch-tokens runs alone in windows of that many tokens that carry the
    RNN state: the same numbers as one pass over it (1e-5), with short documents batched beside it,
    from 0 and from a tuned state, on the byte model and on a world-vocabulary model."""
    tiny = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")
    texts = joined_lambada(tmp_path, 4, 6)
    assert 1500 < len(texts[-1].encode()) < 3000
    src = tmp_path / "long.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))

    def same(whole, windows):
        assert whole["n"] == windows["n"] == 5
        assert abs(windows["log_prob_sum"] - whole["log_prob_sum"]) <= 1e-5 * abs(whole["log_prob_sum"]), (whole, windows)
        assert windows["correct"] == whole["correct"]

    same(ours(app, tiny, src, "--tokenizer", "bytes", "--batch-tokens", "100000"),
         ours(app, tiny, src, "--tokenizer", "bytes", "--batch-tokens", "500"))
    # from a tuned state: --state in windows against the merged model (time_state inside) in one pass
    state = golden("peft/state/rwkv-0.pth")
    merged = tmp_path / "merged.pth"
    subprocess.run([str(app), "merge", "--base", tiny, "--adapter", state, "--out", merged], check=True,
                   capture_output=True)
    same(ours(app, merged, src, "--tokenizer", "bytes", "--batch-tokens", "100000"),
         ours(app, tiny, src, "--tokenizer", "bytes", "--batch-tokens", "500", "--state", str(state)))

    world = world_model(app, tmp_path)
    vocab = str(DATA / "vocab" / "rwkv_vocab_v20230424.txt")
    same(ours(app, world, src, "--vocab", vocab, "--batch-tokens", "100000"),
         ours(app, world, src, "--vocab", vocab, "--batch-tokens", "100"))  # the default is 256 here


def test_a_10_mb_line_runs_in_bounded_memory(app, tmp_path):
    """One 10 MB document (about 78K world tokens: its logits alone would be 20 GB) scores under an
    8 GiB address-space cap, with the default --batch-tokens (256 tokens for 65536 ids)."""
    import resource
    world = world_model(app, tmp_path, layers=1)  # one layer: the state's scan is the time it takes
    src = tmp_path / "long.jsonl"
    src.write_text(json.dumps({"text": "The story begins." + " " * 10_000_000 + "It ends"}) + "\n"
                   + json.dumps({"text": "a short one"}) + "\n")

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    r = subprocess.run([str(app), "eval", "--model", str(world), "--task", "lambada", "--input", str(src), "--vocab",
                        str(DATA / "vocab" / "rwkv_vocab_v20230424.txt")], capture_output=True, text=True,
                       timeout=600, preexec_fn=cap,  # (few threads: each one's malloc arena is address space)
                       env=dict(os.environ, OMP_NUM_THREADS="2", MALLOC_ARENA_MAX="2"))
    assert r.returncode == 0, r.stderr
    got = strict_json(r.stdout.strip().splitlines()[1])
    assert got["n"] == 2 and math.isfinite(got["log_prob_sum"]), got


def scaled_model(tmp_path, name, edit):
    sd = torch.load(golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth"), weights_only=True)
    edit(sd)
    torch.save(sd, tmp_path / name)
    return tmp_path / name


def test_eval_output_is_always_json_and_empty_inputs_are_refused(app, tmp_path):
    tiny = golden("tiny_rwkv7_834K/tiny-rwkv7-834K.pth")
    eval_args = ["eval", "--task", "lambada", "--tokenizer", "bytes"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "nospace"}\n')
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    for src, extra, needle in [(empty, [], "no document"), (blank, [], "no document"),
                               (bad, ["--skip-bad-lines"], "1 line skipped"), (folder, [], "is a directory")]:
        r = run_app(app, *eval_args, "--model", tiny, "--input", src, *extra)
        lines = r.stderr.strip().splitlines()  # (a skipped line is reported on a line of its own first)
        assert r.returncode > 0 and len(lines) == 1 + ("--skip-bad-lines" in extra), (src, r.stderr)
        assert str(src) in lines[-1] and needle in lines[-1], (src, r.stderr)
        assert r.stdout == "", r.stdout

    # a perplexity past a double's range: "ppl": null and why, never inf
    lambada_jsonl(tmp_path / "l.jsonl", 4)
    sharp = scaled_model(tmp_path, "sharp.pth", lambda sd: sd["head.weight"].mul_(1000))
    for out in ([], ["--out", str(tmp_path / "r.json")]):
        r = run_app(app, *eval_args, "--model", sharp, "--input", tmp_path / "l.jsonl", *out)
        assert r.returncode == 0, r.stderr
        got = strict_json(open(tmp_path / "r.json").read() if out else r.stdout.strip().splitlines()[1])
        assert got["n"] == 4 and got["ppl"] is None and "overflow" in got["ppl_note"], got
        assert got["log_prob_sum"] < -4 * 710, got

    # a model whose numbers are not finite: refused, naming the model
    nan = scaled_model(tmp_path, "nan.pth", lambda sd: sd["blocks.0.att.receptance.weight"].fill_(float("nan")))
    r = run_app(app, *eval_args, "--model", nan, "--input", tmp_path / "l.jsonl")
    lines = r.stderr.strip().splitlines()
    assert r.returncode > 0 and len(lines) == 1 and str(nan) in lines[0], r.stderr
    assert "nan" not in r.stdout.lower(), r.stdout
