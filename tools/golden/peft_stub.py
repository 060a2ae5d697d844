"""Import RWKV-PEFT's own Python code (JL-er/RWKV-PEFT at 5b8aac9) on a CPU.

RWKV-PEFT runs WKV-7 through rwkv-fla's Triton kernel (`--op fla`, the only x070 path with a
state op) and imports lightning, deepspeed, bitsandbytes, einops, rwkv-fla and others at import
time. Without touching the checkout, this module puts stand-ins in sys.modules first:

  * rwkvfla.ops.rwkv7.chunk_rwkv7 -> the plain recurrence (seed_stub.wkv7_recurrence) with
    rwkv-fla's interface of that time: `w` is the raw decay parameter (decay exp(-exp(w))),
    `initial_state` and the final state are [B, H, K, V] (the transpose of S[value][key]);
  * lightning / lightning_utilities: LightningModule is nn.Module, LightningDataModule and
    Callback plain classes, rank_zero_* trivial (one process);
  * deepspeed: FusedAdam / DeepSpeedCPUAdam -> torch.optim Adam / AdamW (same update);
  * bitsandbytes, transformers, datasets, einops.rearrange: import-only (they raise if used);
  * torch.compile: a no-op decorator (eager, same math).
"""
import importlib
import importlib.machinery
import os
import sys
import types

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seed_stub  # noqa: E402


def chunk_rwkv7(r, w, k, v, a, b, scale=1.0, initial_state=None, output_final_state=False,
                head_first=False, **unused):
    assert not head_first and scale == 1.0
    s0 = None if initial_state is None else initial_state.transpose(-1, -2)
    y, S = seed_stub.wkv7_recurrence(r, w, k, v, a, b, s0)
    return y, (S.transpose(-1, -2) if output_final_state else None)


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec() must see it
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def _unavailable(what):
    def fn(*a, **k):
        raise RuntimeError(f"{what} is not available in this CPU harness")
    return fn


def install_stubs():
    # rwkv-fla: only chunk_rwkv7 is reached with these settings
    _module("rwkvfla")
    _module("rwkvfla.ops")
    _module("rwkvfla.ops.rwkv7", chunk_rwkv7=chunk_rwkv7,
            fused_addcmul_rwkv7=_unavailable("fused_addcmul_rwkv7"),
            channel_mixing_rwkv7=_unavailable("channel_mixing_rwkv7"))
    _module("rwkvfla.ops.rwkv6", chunk_rwkv6=_unavailable("chunk_rwkv6"))
    _module("rwkvfla.modules")
    _module("rwkvfla.modules.layernorm", GroupNorm=nn.GroupNorm)

    class LightningModule(nn.Module):
        def all_gather(self, x):
            return x

        def log(self, *a, **k):
            pass

    class Callback:
        def log(self, *a, **k):
            pass

    class LightningDataModule:
        def __init__(self, *a, **k):
            pass

    class DeepSpeedStrategy:
        pass

    class Trainer:
        def __init__(self, *a, **k):
            raise RuntimeError("Lightning's Trainer is replaced by make_peft_runs.py's loop")

    rz = _module("lightning_utilities.core.rank_zero", rank_zero_info=lambda *a, **k: None,
                 rank_zero_only=lambda fn: fn)
    _module("lightning_utilities", core=_module("lightning_utilities.core", rank_zero=rz))
    strategies = _module("lightning.pytorch.strategies", DeepSpeedStrategy=DeepSpeedStrategy)
    pytorch = _module("lightning.pytorch", strategies=strategies, Trainer=Trainer,
                      Callback=Callback, LightningModule=LightningModule,
                      seed_everything=seed_stub.seed_everything)
    _module("lightning", pytorch=pytorch, LightningModule=LightningModule, Callback=Callback,
            LightningDataModule=LightningDataModule, Trainer=Trainer,
            seed_everything=seed_stub.seed_everything)
    _module("pytorch_lightning", LightningModule=LightningModule, Callback=Callback,
            Trainer=Trainer)

    adam = _module("deepspeed.ops.adam", FusedAdam=seed_stub.adam_substitute,
                   DeepSpeedCPUAdam=seed_stub.adam_substitute)
    ops = _module("deepspeed.ops", adam=adam)
    ckpt = _module("deepspeed.checkpointing", checkpoint=_unavailable("deepspeed checkpointing"))
    _module("deepspeed", ops=ops, checkpointing=ckpt, __version__="stub")
    _module("bitsandbytes", functional=_module("bitsandbytes.functional"))
    # named in type annotations of the SFT dataset module only
    _module("transformers", AutoTokenizer=None, PreTrainedTokenizer=object)
    _module("datasets", load_dataset=_unavailable("datasets"))
    _module("einops", rearrange=_unavailable("einops.rearrange"))
    # rwkv.utils.PIPELINE is imported by the dataset module (tokenizing text data only)
    if importlib.util.find_spec("rwkv") is None:
        _module("rwkv", utils=_module("rwkv.utils", PIPELINE=None))
    torch.compile = lambda fn=None, *a, **k: fn if fn is not None else (lambda f: f)


def load_peft(path, train_type="none", my_testing="x070", head_size=64):
    """Put the RWKV-PEFT checkout on sys.path with the environment train.py sets (--op fla)."""
    root = os.path.abspath(path)
    if not os.path.isfile(os.path.join(root, "rwkvt", "operator", "rwkvop.py")):
        raise SystemExit(f"{path}: not an RWKV-PEFT checkout")
    os.environ["WKV"] = "fla"
    os.environ["FUSED_KERNEL"] = "0"
    os.environ["RWKV_TRAIN_TYPE"] = train_type
    os.environ["RWKV_MY_TESTING"] = my_testing
    os.environ["RWKV_HEAD_SIZE_A"] = str(head_size)
    os.environ["RWKV_HEAD_SIZE"] = str(head_size)
    os.environ["RWKV_CTXLEN"] = os.environ.get("RWKV_CTXLEN", "64")
    os.environ["RWKV_FLOAT_MODE"] = "fp32"
    install_stubs()
    sys.path.insert(0, root)
    return root
