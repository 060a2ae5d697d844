"""peft/<method>/: short fine-tuning runs of RWKV-PEFT's own code (JL-er/RWKV-PEFT at 5b8aac9) on
the CPU in fp32, from tiny_rwkv7_834K on the byte-level LAMBADA data, 20 steps each.

RWKV-PEFT's train.py runs unchanged (runpy, with the command line below); peft_stub.py supplies
its imports (plain WKV-7 for rwkv-fla's chunk_rwkv7, no Lightning/DeepSpeed). Lightning's
Trainer is replaced by `PlainTrainer`, whose fit() is the loop Lightning runs for this setup
(one process, fp32, no accumulation): train_callback.on_train_epoch_start; per batch
on_train_batch_start, training_step, training_step_end, backward,
clip_grad_norm_(trainable, 1.0) (train.py's gradient_clip_val), optimizer step,
on_train_batch_end; on_train_epoch_end (which writes rwkv-0.pth). Then RWKV-PEFT's merge script
for the method runs (merge_state.py, merge.py --type lora/pissa, merge_disha.py).

Writes per method: config.json (the arguments train.py ended with, environment, trainable
tensors, parameter groups), init.pth (the trainable part before step 0, saved through the same
callback), grads_step0.pth, reference.json (per step loss, lr, grad norm before clipping,
documents, targets, first tokens), rwkv-0.pth, merged.pth, logits.json (the prompt
`The quick brown fox`: tuned model and base model logits); and summary.json.
Not written (unlike the committed files): the logits of a fresh model loading merged.pth and the
rwkv pip package cross-check.
"""
import argparse
import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

METHODS = {
    "state": ["--train_type", "state", "--lr_init", "1", "--lr_final", "0.01"],
    "lora": ["--peft", "lora", "--lora_config",
             '{"lora_load":"", "lora_r":8, "lora_alpha":32, "lora_dropout":0.0}',
             "--lr_init", "6e-4", "--lr_final", "1e-5"],
    "disha": ["--peft", "disha", "--disha_config", '{"mode":"bone", "load":"", "r":64}',
              "--lr_init", "6e-4", "--lr_final", "1e-5"],
    "pissa": ["--peft", "pissa", "--lr_init", "6e-4", "--lr_final", "1e-5"],
}
PROMPT = "The quick brown fox"


def common_args(base, data, proj, steps):
    return ["--load_model", base, "--proj_dir", proj, "--data_file", data, "--data_type",
            "binidx", "--vocab_size", "256", "--ctx_len", "64", "--epoch_steps", str(steps),
            "--epoch_count", "1", "--epoch_begin", "0", "--epoch_save", "1", "--micro_bsz", "2",
            "--n_layer", "12", "--n_embd", "64", "--warmup_steps", "0", "--beta1", "0.9",
            "--beta2", "0.99", "--adam_eps", "1e-8", "--my_testing", "x070", "--op", "fla",
            "--accelerator", "cpu", "--devices", "1", "--precision", "fp32", "--strategy",
            "auto", "--grad_cp", "0", "--dataload", "pad", "--data_shuffle", "0",
            "--loss_mask", "pad", "--lr_schedule", "cos", "--random_seed", "42"]


def run_one(peft_root, method, base, data, out, steps):
    """Run in a child process: RWKV-PEFT reads its environment at import time."""
    import torch
    import peft_stub

    torch.set_num_threads(1)
    peft_stub.load_peft(peft_root)
    import lightning
    proj = tempfile.mkdtemp(prefix=f"peft-{method}-")
    rec = {}

    class PlainTrainer:
        def __init__(self, callbacks, gradient_clip_val, **kw):
            self.cb = callbacks[0]
            self.clip = gradient_clip_val
            self.global_step, self.current_epoch = 0, 0
            self.is_global_zero, self.global_rank, self.world_size = True, 0, 1
            self.accumulate_grad_batches = 1
            self.strategy = None

        def fit(self, model, datamodule):
            datamodule.trainer = self
            datamodule.setup("fit")
            loader = datamodule.train_dataloader()
            self.train_dataloader = loader
            object.__setattr__(model, "trainer", self)
            opt = model.configure_optimizers()
            self.optimizers = [opt]
            trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
            rec.update(model=model, opt=opt, trainable=trainable, args=self.cb.args)
            rec["base_logits"] = logits_of(model)
            # the trainable part before step 0, through the callback's own filter and save
            self.my_log, self.my_epoch_loss, self.my_lr = open(os.devnull, "w"), 0.0, 0.0
            self.cb.on_train_epoch_end(self, model)
            os.replace(os.path.join(proj, "rwkv-0.pth"), os.path.join(out, "init.pth"))
            self.cb.on_train_epoch_start(self, model)
            rows = []
            for i, idxs in enumerate(loader.batch_sampler):
                if i == steps:
                    break
                batch = loader.collate_fn([loader.dataset[j] for j in idxs])
                self.cb.on_train_batch_start(self, model, batch, i)
                loss = model.training_step(batch, i)
                model.training_step_end(loss)
                opt.zero_grad()
                loss.backward()
                if i == 0:
                    torch.save({plain(n): p.grad.clone() for n, p in sorted(trainable)},
                               os.path.join(out, "grads_step0.pth"))
                gn = torch.nn.utils.clip_grad_norm_([p for _, p in trainable], self.clip)
                opt.step()
                self.global_step += 1
                self.cb.on_train_batch_end(self, model, {"loss": loss.detach()}, batch, i)
                rows.append({"step": i, "loss": float(loss), "lr": self.my_lr,
                             "grad_norm": float(gn), "docs": [int(j) for j in idxs],
                             "n_targets": int((batch[1] != -100).sum()),
                             "first_sample_tokens": batch[0][0][:8].tolist()})
                print(f"{method} step {i} loss {float(loss):.6f} gn {float(gn):.3e}", flush=True)
            rec["rows"] = rows
            self.cb.on_train_epoch_end(self, model)  # writes rwkv-0.pth
            rec["tuned_logits"] = logits_of(model)

    def plain(name):  # checkpoint names: the Lightning wrapper's "model." dropped
        return name[len("model."):] if name.startswith("model.") else name

    def logits_of(model):
        ids = torch.tensor([list(PROMPT.encode())])
        with torch.no_grad():
            return model(ids)[0].tolist()

    lightning.Trainer = PlainTrainer
    lightning.__version__ = "2.4.0"  # train.py takes its Lightning-2 branch
    argv = ["train.py"] + common_args(base, data, proj, steps) + METHODS[method]
    sys.argv, cwd = argv, os.getcwd()
    os.chdir(peft_root)
    try:
        runpy.run_path(os.path.join(peft_root, "train.py"), run_name="__main__")
    finally:
        os.chdir(cwd)
    shutil.copy(os.path.join(proj, "rwkv-0.pth"), os.path.join(out, "rwkv-0.pth"))
    if os.path.exists(os.path.join(proj, "init_pissa.pth")):
        shutil.copy(os.path.join(proj, "init_pissa.pth"), os.path.join(out, "init_pissa.pth"))
    args = rec["args"]
    groups = []
    for g in rec["opt"].param_groups:
        ids = {id(p) for p in g["params"]}
        groups.append({"lr_scale": g.get("my_lr_scale", 1.0), "weight_decay": g["weight_decay"],
                       "params": sorted(plain(n) for n, p in rec["model"].named_parameters()
                                        if id(p) in ids)})  # sorted, as light_rwkv lists them
    cfg = {"method": method, "rwkv_peft_commit": "5b8aac9cbed9474fb9f13332ffe9bd1aa377b7d2",
           "steps": steps, "seed": 42, "torch_threads": 1,
           "args": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, list,
                                                                            dict, type(None)))},
           "env": {k: os.environ[k] for k in ("RWKV_MY_TESTING", "RWKV_TRAIN_TYPE", "WKV",
                                              "FUSED_KERNEL", "RWKV_FLOAT_MODE",
                                              "RWKV_HEAD_SIZE_A", "RWKV_CTXLEN")},
           "trainable": [[plain(n), list(p.shape)] for n, p in rec["trainable"]],
           "param_groups": groups}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"steps": rec["rows"]}, f, indent=1)
    with open(os.path.join(out, "logits.json"), "w") as f:
        json.dump({"prompt": PROMPT, "ids": list(PROMPT.encode()),
                   "tuned_model": {"logits": rec["tuned_logits"]},
                   "base_model": {"logits": rec["base_logits"]}}, f)
    merge(peft_root, method, base, out)
    shutil.rmtree(proj)


def merge(peft_root, method, base, out):
    """RWKV-PEFT's merge script for the method (its own command line)."""
    ck, dst = os.path.join(out, "rwkv-0.pth"), os.path.join(out, "merged.pth")
    cmd = {"state": ["merge/merge_state.py", "--state_checkpoint", ck],
           "lora": ["merge/merge.py", "--type", "lora", "--lora_checkpoint", ck,
                    "--lora_alpha", "32"],
           "pissa": ["merge/merge.py", "--type", "pissa", "--lora_checkpoint", ck,
                     "--lora_init", os.path.join(out, "init_pissa.pth")],
           "disha": ["merge/merge_disha.py", "--peft_checkpoint", ck]}[method]
    import peft_stub
    peft_stub.install_stubs()
    sys.argv = cmd + ["--base_model", base, "--output", dst, "--device", "cpu"]
    runpy.run_path(os.path.join(peft_root, cmd[0]), run_name="__main__")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peft", required=True, help="RWKV-PEFT checkout")
    ap.add_argument("--out", required=True, help="folder; runs go to OUT/<method>/")
    ap.add_argument("--base", required=True, help="tiny-rwkv7-834K.pth")
    ap.add_argument("--data", required=True, help="binidx prefix of lambada_bytes")
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    peft, base, data = (os.path.abspath(x) for x in (a.peft, a.base, a.data))
    if a.child:
        out = os.path.join(os.path.abspath(a.out), a.child)
        os.makedirs(out, exist_ok=True)
        run_one(peft, a.child, base, data, out, a.steps)
        return
    summary = {}
    for m in a.methods:
        subprocess.run([sys.executable, os.path.abspath(__file__), "--peft", peft, "--out", a.out,
                        "--base", base, "--data", data, "--steps", str(a.steps), "--child", m],
                       check=True)
        rows = json.load(open(os.path.join(a.out, m, "reference.json")))["steps"]
        summary[m] = {"loss_first": rows[0]["loss"], "loss_last": rows[-1]["loss"],
                      "grad_norm_first": rows[0]["grad_norm"],
                      "grad_norm_last": rows[-1]["grad_norm"]}
    summary["rwkv_peft_commit"] = "5b8aac9cbed9474fb9f13332ffe9bd1aa377b7d2"
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
