"""train_byte_L2_D128/ and train_world_L2_D64/: a short training run of the seed trainer on the
CPU in fp32 (its WKV-7 op replaced by the plain recurrence, seed_stub.py).

What runs is the seed's own code: RWKV (model, configure_optimizers, training_step with L2Wrap,
training_step_end), generate_init_weight (the prepare step, saving rwkv-init.pth), MyDataset (the
magic-prime sampler), train_callback (lr schedule, loss averaging, train_log.txt, saving) and
my_save. Lightning's loop is replaced by the plain one it runs for this setup (one process, fp32,
no accumulation): on_train_epoch_start; per batch on_train_batch_start, training_step,
training_step_end, backward, clip_grad_norm_(all parameters, grad_clip) (Lightning's
gradient_clip_val), optimizer step, on_train_batch_end; on_train_epoch_end.

Outputs: rwkv-init.pth (unless --init is given), reference.json (config, parameter groups, per
step loss / lr / grad norm before clipping / first tokens of the batch, per mini-epoch mean loss),
after-<N>-steps.pth (model.state_dict() saved by the seed's my_save, as it saves rwkv-<n>.pth).

The byte run shortens a mini-epoch from 40320 samples (train.py asserts that number) to
--epoch-samples 160 so that three mini-epochs fit in 120 steps; epoch 0 samples are the same.
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_stub  # noqa: E402

PRESETS = {
    "byte": dict(name="train_byte_L2_D128", data="lambada_bytes", n_layer=2, n_embd=128,
                 vocab_size=256, ctx_len=64, micro_bsz=4, magic_prime=26459,
                 epoch_samples=160, steps=120, init_float_mode="fp32"),
    "world": dict(name="train_world_L2_D64", data="lambada_world", n_layer=2, n_embd=64,
                  vocab_size=65536, ctx_len=32, micro_bsz=2, magic_prime=12923,
                  epoch_samples=40320, steps=20, init_float_mode="bf16"),
}
# settings shared by both runs (the seed's demo run, scaled down)
COMMON = dict(lr_init=6e-4, lr_final=6e-5, warmup_steps=10, beta1=0.9, beta2=0.99,
              adam_eps=1e-18, weight_decay=0.001, grad_clip=1.0, train_stage=3, epoch_begin=0,
              grad_cp=0, accelerator="cpu", devices=1, num_nodes=1, precision="fp32",
              head_size=64, my_testing="x070", data_type="binidx", load_model="")
CONFIG_KEYS = ["my_testing", "head_size", "dim_att", "dim_ffn", "grad_cp", "accelerator",
               "train_stage", "epoch_begin", "num_nodes", "devices", "load_model",
               "warmup_steps", "lr_init", "lr_final", "beta1", "beta2", "adam_eps",
               "weight_decay", "grad_clip", "my_exit_tokens", "magic_prime", "data_type",
               "precision", "n_layer", "n_embd", "vocab_size", "ctx_len", "micro_bsz",
               "data_file", "betas", "real_bsz", "epoch_steps"]


def build_dataset(seed, args, data_prefix, epoch_samples):
    # MyDataset asserts 40320 samples per mini-epoch: build it so, then shorten the mini-epoch
    args.epoch_steps = 40320 // args.real_bsz
    args.data_file = data_prefix
    ds = seed.dataset.MyDataset(args)
    args.epoch_steps = epoch_samples // args.real_bsz
    ds.samples_per_epoch = args.epoch_steps * args.real_bsz
    return ds


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", required=True, help="RWKV-LM checkout (or its RWKV-v7/train_temp)")
    ap.add_argument("--out", required=True, help="folder; the run goes to OUT/<run name>/")
    ap.add_argument("--run", choices=sorted(PRESETS), required=True)
    ap.add_argument("--data", required=True, help="folder with lambada_bytes.* / lambada_world.*")
    ap.add_argument("--init", help="start from this rwkv-init.pth instead of making one")
    ap.add_argument("--random-seed", type=int, default=-1,
                    help="seed the generators before the model is built (train.py's "
                         "--random_seed; -1: not seeded, as the seed's default)")
    ap.add_argument("--steps", type=int, help="override the preset's step count")
    ap.add_argument("--wkv-dtype", choices=["input", "float64"], default="input",
                    help="precision of the plain recurrence (input: the model's fp32)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    a = ap.parse_args()
    p = dict(PRESETS[a.run])
    steps = a.steps or p["steps"]
    torch.set_num_threads(a.threads)

    seed = seed_stub.load_seed(a.seed, float_mode=p["init_float_mode"],
                               wkv_dtype=torch.float64 if a.wkv_dtype == "float64" else None)
    out = os.path.join(a.out, p["name"])
    os.makedirs(out, exist_ok=True)
    proj = tempfile.mkdtemp(prefix="seed-proj-")
    prefix = os.path.join(a.data, p["data"])
    tokens = os.path.getsize(prefix + ".bin") // 2  # uint16 tokens; budget = the whole file
    args = seed_stub.make_args(**COMMON, n_layer=p["n_layer"], n_embd=p["n_embd"],
                               vocab_size=p["vocab_size"], ctx_len=p["ctx_len"],
                               micro_bsz=p["micro_bsz"], magic_prime=p["magic_prime"],
                               my_exit_tokens=tokens, proj_dir=proj, epoch_save=0)
    ds = build_dataset(seed, args, prefix, p["epoch_samples"])
    assert ds.data_size == tokens

    if a.random_seed >= 0:
        seed_stub.seed_everything(a.random_seed)
    model = seed.model.RWKV(args)
    init_path = a.init
    if not init_path:
        init_path = os.path.join(out, "rwkv-init.pth")
        with seed_stub.quiet():
            seed.trainer.generate_init_weight(model, init_path)  # honours RWKV_FLOAT_MODE
    os.environ["RWKV_FLOAT_MODE"] = "fp32"  # training precision
    model.load_state_dict(torch.load(init_path, map_location="cpu"))

    trainer = seed_stub.FakeTrainer(dataset=ds)
    seed_stub.attach_trainer(model, trainer)
    with seed_stub.quiet():
        opt = model.configure_optimizers()
    trainer.optimizers = [opt]
    cb = seed.trainer.train_callback(args)

    step_rows, epoch_rows = [], []
    epoch = 0
    while len(step_rows) < steps:
        trainer.current_epoch = epoch
        cb.on_train_epoch_start(trainer, model)
        loader = DataLoader(ds, shuffle=False, batch_size=args.micro_bsz, num_workers=0,
                            drop_last=True)
        finished = True
        for i, batch in enumerate(loader):
            if len(step_rows) == steps:
                finished = False
                break
            with seed_stub.quiet():
                cb.on_train_batch_start(trainer, model, batch, i)
            loss = model.training_step(batch, i)
            model.training_step_end(loss)
            opt.zero_grad()
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            trainer.global_step += 1
            cb.on_train_batch_end(trainer, model, loss, batch, i)
            step_rows.append({"step": len(step_rows), "epoch": epoch, "loss": trainer.my_loss,
                              "lr": trainer.my_lr, "grad_norm": float(gn),
                              "first_sample_tokens": batch[0][0][:8].tolist()})
            print(f"step {len(step_rows) - 1} loss {trainer.my_loss:.6f} lr {trainer.my_lr:.3e}"
                  f" gn {float(gn):.4f}", flush=True)
        if finished:
            cb.on_train_epoch_end(trainer, model)  # writes the mini-epoch line of train_log.txt
            epoch_rows.append({"epoch": epoch, "loss": trainer.my_epoch_loss,
                               "ppl": math.exp(trainer.my_epoch_loss), "lr": trainer.my_lr})
        epoch += 1

    seed.trainer.my_save(args, trainer, model.state_dict(),
                         os.path.join(out, f"after-{steps}-steps.pth"))
    cfg = {k: getattr(args, k) for k in CONFIG_KEYS}
    cfg["data_file"] = "data/" + p["data"]
    cfg["load_model"] = ""
    ref = {"config": cfg, "param_groups": seed_stub.group_names(model, opt),
           "steps": step_rows, "epochs": epoch_rows}
    if p["epoch_samples"] != 40320:
        ref["note"] = (f"epoch_samples overridden to {p['epoch_samples']} (the seed uses 40320);"
                       f" the first {args.epoch_steps} steps are the same under 40320")
    if p["init_float_mode"] != "fp32":
        ref["note"] = (f"rwkv-init.pth is {p['init_float_mode']} as the seed's prepare step "
                       "writes it; training runs in fp32 from it")
    ref["data_tokens"] = tokens
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    shutil.copy(os.path.join(proj, "train_log.txt"), os.path.join(out, "train_log.txt"))
    shutil.rmtree(proj)
    print("wrote", out)


if __name__ == "__main__":
    main()
