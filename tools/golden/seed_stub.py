"""Import the seed trainer's own Python code on a CPU.

The seed (BlinkDL/RWKV-LM, RWKV-v7/train_temp at 230d32b) builds a CUDA WKV-7 kernel when
src/model.py is imported and expects pytorch-lightning 1.9 and deepspeed. To run its unmodified
model, init, optimizer groups, schedule and sampler on a machine without either, this module
(never the checkout's files) makes four substitutions:

  * torch.utils.cpp_extension.load is a no-op while src/model.py is imported, and the op class
    it would have wrapped (WindBackstepping) is replaced by `PlainWKV7`, the recurrence
        S_t = S_{t-1} diag(exp(-exp(w_t))) + (S_{t-1} a_t) b_t^T + v_t k_t^T,   y_t = S_t r_t
    written as torch ops, so autograd gives every gradient;
  * pytorch_lightning is replaced by the few names the seed uses (LightningModule is a plain
    nn.Module, Callback has a no-op log, rank_zero_* are trivial: one process);
  * deepspeed's FusedAdam / DeepSpeedCPUAdam become torch.optim.AdamW / Adam (same update);
  * RWKV_JIT_ON is 0 (eager forward, same math as the TorchScript one).
"""
import contextlib
import datetime
import io
import importlib
import os
import sys
import types
from pathlib import Path

import torch
import torch.nn as nn


def find_train_temp(path):
    """Accept either a checkout of RWKV-LM or its RWKV-v7/train_temp folder."""
    p = Path(path).resolve()
    for cand in (p, p / "RWKV-v7" / "train_temp"):
        if (cand / "src" / "model.py").is_file() and (cand / "src" / "trainer.py").is_file():
            return cand
    raise SystemExit(f"{path}: not an RWKV-LM checkout nor its RWKV-v7/train_temp folder")


def find_repo_root(path):
    """The RWKV-LM checkout root (for files outside train_temp, e.g. the tokenizer)."""
    tt = find_train_temp(path)
    return tt.parent.parent


# ---------------------------------------------------------------------------------------------
# The plain WKV-7 recurrence (replaces the CUDA op)
# ---------------------------------------------------------------------------------------------

# dtype the recurrence runs in; None = the inputs' dtype. Set by load_seed(wkv_dtype=...).
_WKV_DTYPE = None


def wkv7_recurrence(r, w, k, v, a, b, s0=None):
    """y[B,T,H,N] of the recurrence above; s0 optional initial state [B,H,N,N] (S[value][key])."""
    B, T, H, N = r.shape
    S = r.new_zeros(B, H, N, N) if s0 is None else s0
    decay = torch.exp(-torch.exp(w))
    ys = []
    for t in range(T):
        sa = torch.einsum("bhij,bhj->bhi", S, a[:, t])          # S_{t-1} a_t, before the decay
        S = (S * decay[:, t, :, None, :]
             + sa[..., None] * b[:, t, :, None, :]
             + v[:, t, :, :, None] * k[:, t, :, None, :])
        ys.append(torch.einsum("bhij,bhj->bhi", S, r[:, t]))
    return torch.stack(ys, dim=1), S


class PlainWKV7:
    """Stands in for the seed's WindBackstepping: same argument order (w, q, k, v, z, b)."""

    @staticmethod
    def apply(w, q, k, v, z, b):
        dt = _WKV_DTYPE or q.dtype
        y, _ = wkv7_recurrence(*(x.to(dt) for x in (q, w, k, v, z, b)))
        return y.to(q.dtype).contiguous()


# ---------------------------------------------------------------------------------------------
# Framework stand-ins
# ---------------------------------------------------------------------------------------------

def _install_lightning_stub():
    pl = types.ModuleType("pytorch_lightning")
    utilities = types.ModuleType("pytorch_lightning.utilities")
    strategies = types.ModuleType("pytorch_lightning.strategies")

    class LightningModule(nn.Module):
        # single process: gathering a tensor over ranks gives the tensor
        def all_gather(self, x):
            return x

        def log(self, *a, **k):
            pass

    class Callback:
        def log(self, *a, **k):
            pass

    class DeepSpeedStrategy:
        pass

    utilities.rank_zero_info = lambda *a, **k: None
    utilities.rank_zero_only = lambda fn: fn
    strategies.DeepSpeedStrategy = DeepSpeedStrategy
    pl.LightningModule = LightningModule
    pl.Callback = Callback
    pl.utilities = utilities
    pl.strategies = strategies
    pl.seed_everything = seed_everything
    sys.modules["pytorch_lightning"] = pl
    sys.modules["pytorch_lightning.utilities"] = utilities
    sys.modules["pytorch_lightning.strategies"] = strategies


def adam_substitute(params, lr, betas, eps, bias_correction=True, adam_w_mode=True,
                    adamw_mode=None, weight_decay=0.0, amsgrad=False):
    """deepspeed FusedAdam (adam_w_mode) / DeepSpeedCPUAdam (adamw_mode) with bias correction."""
    assert bias_correction and not amsgrad
    decoupled = adam_w_mode if adamw_mode is None else adamw_mode
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    return cls(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def seed_everything(seed):
    """What pytorch_lightning.seed_everything seeds: random, numpy, torch."""
    import random
    import numpy as np
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------

def load_seed(path, head_size=64, float_mode="fp32", wkv_dtype=None):
    """Import the seed's src.model, src.trainer, src.dataset, src.binidx; return them."""
    global _WKV_DTYPE
    _WKV_DTYPE = wkv_dtype
    tt = find_train_temp(path)
    os.environ["RWKV_MY_TESTING"] = "x070"
    os.environ["RWKV_HEAD_SIZE"] = str(head_size)
    os.environ["RWKV_JIT_ON"] = "0"
    os.environ["RWKV_FLOAT_MODE"] = float_mode  # read by generate_init_weight
    _install_lightning_stub()
    sys.path.insert(0, str(tt))

    import torch.utils.cpp_extension as cpp_ext
    real_load = cpp_ext.load
    cpp_ext.load = lambda *a, **k: None  # the CUDA build the import would start
    try:
        with quiet():
            model = importlib.import_module("src.model")
    finally:
        cpp_ext.load = real_load
    model.WindBackstepping = PlainWKV7
    model.FusedAdam = adam_substitute
    model.DeepSpeedCPUAdam = adam_substitute
    trainer = importlib.import_module("src.trainer")
    dataset = importlib.import_module("src.dataset")
    binidx = importlib.import_module("src.binidx")
    return types.SimpleNamespace(model=model, trainer=trainer, dataset=dataset, binidx=binidx,
                                 train_temp=tt)


@contextlib.contextmanager
def quiet():
    """The seed prints its progress (init tables, optimizer groups); keep stdout for ours."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def make_args(**over):
    """The argument namespace train.py builds (its defaults plus what it derives)."""
    a = dict(load_model="", wandb="", proj_dir="out", random_seed=-1, data_file="",
             data_type="binidx", vocab_size=0, ctx_len=1024, epoch_steps=1000, epoch_count=500,
             epoch_begin=0, epoch_save=5, micro_bsz=12, n_layer=6, n_embd=512, dim_att=0,
             dim_ffn=0, lr_init=6e-4, lr_final=1e-5, warmup_steps=-1, beta1=0.9, beta2=0.99,
             adam_eps=1e-18, grad_cp=0, weight_decay=0.0, grad_clip=1.0, train_stage=0,
             ds_bucket_mb=200, head_size=64, load_partial=0, magic_prime=0, my_testing="x070",
             my_exit_tokens=0, accelerator="cpu", devices=1, num_nodes=1, precision="fp32",
             strategy="auto")
    a.update(over)
    a["betas"] = (a["beta1"], a["beta2"])
    a["real_bsz"] = int(a["num_nodes"]) * int(a["devices"]) * a["micro_bsz"]
    if a["dim_att"] <= 0:
        a["dim_att"] = a["n_embd"]
    if a["dim_ffn"] <= 0:
        a["dim_ffn"] = int((a["n_embd"] * 3.5) // 32 * 32)
    a["gradient_clip_val"] = a["grad_clip"]
    a["my_timestamp"] = datetime.datetime.today().strftime("%Y-%m-%d-%H-%M-%S")
    a["run_name"] = f"{a['vocab_size']} ctx{a['ctx_len']} L{a['n_layer']} D{a['n_embd']}"
    return types.SimpleNamespace(**a)


class FakeTrainer:
    """The attributes of a Lightning Trainer that the seed's train_callback reads."""

    def __init__(self, optimizer=None, dataset=None):
        self.global_step = 0
        self.current_epoch = 0
        self.is_global_zero = True
        self.global_rank = 0
        self.world_size = 1
        self.optimizers = [optimizer]
        self.strategy = None  # not DeepSpeed; has no .config (the seed catches that)
        self.train_dataloader = types.SimpleNamespace(
            dataset=types.SimpleNamespace(datasets=dataset))


def attach_trainer(model, trainer):
    # nn.Module.__setattr__ would be fine too; object.__setattr__ keeps it out of the state_dict
    object.__setattr__(model, "trainer", trainer)


def group_names(model, optimizer):
    """The optimizer's groups as (lr scale, weight decay, names in named_parameters order)."""
    out = []
    for g in optimizer.param_groups:
        ids = {id(p) for p in g["params"]}
        names = [n for n, p in model.named_parameters() if id(p) in ids]
        out.append({"lr_scale": g["my_lr_scale"], "weight_decay": g["weight_decay"],
                    "params": names})
    return out
