"""`rwkv7 eval --task lambada` against an independent computation of the same numbers with
BlinkDL's `rwkv` package (its own forward pass and, for the world vocabulary, its own tokenizer),
RWKV-LM's method: context [0] + encode(src), target encode(" " + last), the target's summed log
probability and whether every target token is the argmax."""
import json
import math
import os
import subprocess

import numpy as np
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
    # padding never changes a score: one document per batch gives the same numbers
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
