"""schedule.json: the lr the seed's train_callback.on_train_batch_start sets, for a grid of runs
(the MiniPile run from scratch and resumed at mini-epoch 30, and a long ctx-4096 run) and steps
(warmup, its end, mini-epoch edges, the end of the token budget and past it).

Past the budget the seed saves rwkv-final.pth and calls exit(0) before it sets the lr; here its
save and exit are no-ops so the lr it computed is still read.
"""
import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_stub  # noqa: E402

RUNS = [dict(ctx_len=512, micro_bsz=16, lr_init=6e-4, lr_final=6e-5, warmup_steps=10,
             my_exit_tokens=1498226207, epoch_begin=0),
        dict(ctx_len=512, micro_bsz=16, lr_init=6e-4, lr_final=6e-5, warmup_steps=10,
             my_exit_tokens=1498226207, epoch_begin=30),
        dict(ctx_len=4096, micro_bsz=8, lr_init=3e-4, lr_final=1e-5, warmup_steps=50,
             my_exit_tokens=332115325534, epoch_begin=0)]
STEPS = [0, 1, 5, 9, 10, 11, 100, 2519, 2520, 50000, 91000, 182886, 182887, 200000]


class _Optimizer:
    param_groups = [{"weight_decay": 0.0, "my_lr_scale": 1.0}]


class _NoModel:
    def state_dict(self):  # only handed to the (disabled) rwkv-final.pth save
        return {}


def lr_at(seed, run, step, proj):
    args = seed_stub.make_args(proj_dir=proj, **run)
    args.epoch_steps = 40320 // args.real_bsz  # as train.py derives it
    trainer = seed_stub.FakeTrainer(_Optimizer())
    trainer.global_step = step
    seed.trainer.train_callback(args).on_train_batch_start(trainer, _NoModel(), None, 0)
    return args, trainer.my_lr


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", required=True, help="RWKV-LM checkout (or its RWKV-v7/train_temp)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    seed = seed_stub.load_seed(a.seed)
    seed.trainer.my_save = lambda *x, **k: None
    seed.trainer.exit = lambda *x, **k: None
    rows = []
    with tempfile.TemporaryDirectory() as proj:
        for run in RUNS:
            for step in STEPS:
                args, lr = lr_at(seed, run, step, proj)
                rows.append(dict(run, global_step=step, epoch_steps=args.epoch_steps, lr=lr))
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "schedule.json")
    with open(path, "w") as f:
        json.dump({"formula_source": "seed trainer.py on_train_batch_start", "rows": rows}, f,
                  indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
