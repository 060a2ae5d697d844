"""Every op's sample arguments, the one source the op tests draw from (extension-cpp's
sample_inputs habit): the value and gradient checks against a composite reference, opcheck, and
the Meta checks of tests/python/test_op_registration.py all call sample_inputs().

An op of ops/op_table.h is one of:
  - a differentiable op (a key of FORWARD): its argument tuples, and its composite in REFERENCE;
  - <op>_forward of a scan (SCANS): <op>'s arguments;
  - <op>_backward: <op>'s arguments, then one gradient per output of <op> (recompute rule,
    ops/recompute_autograd.h), or for a scan dy and what <op>_forward saved.
Adding an op is one entry in FORWARD and one in REFERENCE; its _backward follows.
"""
import torch
import torch.nn.functional as F

# The scans whose autograd runs <op>_forward / <op>_backward with saved tensors.
SCANS = ("wkv7", "wkv7_state", "wkv7_state_passing", "wkv7_reset", "wkv7_raw_decay")
# Rows with no CPU kernel: the raw-decay scan's pieces run on CUDA only (elsewhere the op is the
# composite and differentiates through it, ops/op_table.h).
CUDA_ONLY = ("wkv7_raw_decay_forward", "wkv7_raw_decay_backward")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def scan_inputs(dtype, B=2, T=20, H=2, N=4, raw_decay=False, g=None):
    """r, w (or x), k, v, a, b as the model makes them (T = 20: two CPU chunks, the last one
    partial; w from the model's soft clamp, w <= -0.5)."""
    g = g or _gen()
    x = lambda: torch.randn(B, T, H, N, generator=g, dtype=dtype)  # noqa: E731
    r, k, v = x(), x(), x()
    decay = x() if raw_decay else -F.softplus(-x()) - 0.5
    kk = F.normalize(x(), dim=-1)
    a, b = -kk, kk * torch.sigmoid(x())
    return (r, decay, k, v, a, b)


def _wkv7(dtype):
    return [scan_inputs(dtype), scan_inputs(dtype, B=1, T=1, H=1, N=2, g=_gen(1))]


def _wkv7_state(dtype):
    g = _gen(2)
    B, T, H, N = 2, 20, 2, 4
    shared = scan_inputs(dtype, B, T, H, N, g=g) + (0.5 * torch.randn(H, N, N, generator=g, dtype=dtype),)
    per_sample = scan_inputs(dtype, B, T, H, N, g=g) + (0.5 * torch.randn(B, H, N, N, generator=g, dtype=dtype),)
    return [shared, per_sample]


def _wkv7_state_passing(dtype):
    """A shared and a per-sample initial state; states in float32 (float64 for float64 inputs),
    as the op returns its final state."""
    state_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    g = _gen(10)
    B, T, H, N = 2, 20, 2, 4
    shared = scan_inputs(dtype, B, T, H, N, g=g) + (0.5 * torch.randn(H, N, N, generator=g, dtype=state_dtype),)
    per_sample = scan_inputs(dtype, B, T, H, N, g=g) + (0.5 * torch.randn(B, H, N, N, generator=g, dtype=state_dtype),)
    return [shared, per_sample]


def _wkv7_reset(dtype):
    """Restarts at the first step, inside and at the end of a 16-step CPU chunk, twice in a row,
    at the last step; one sample with none. A shared and a per-sample restart state."""
    state_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    g = _gen(11)
    B, T, H, N = 2, 20, 2, 4
    reset = torch.zeros(B, T, dtype=torch.bool)
    reset[0, [0, 5, 15, 16, 19]] = True
    s0 = lambda *s: 0.5 * torch.randn(*s, generator=g, dtype=state_dtype)  # noqa: E731
    shared = scan_inputs(dtype, B, T, H, N, g=g) + (s0(B, H, N, N), reset, s0(H, N, N))
    per_sample = scan_inputs(dtype, B, T, H, N, g=g) + (s0(H, N, N), reset.flip(1), s0(B, H, N, N))
    return [shared, per_sample]


def _wkv7_raw_decay(dtype):
    return [scan_inputs(dtype, raw_decay=True)]


def _token_shift_mix(dtype):
    g = _gen(3)
    return [(torch.randn(2, 5, 8, generator=g, dtype=dtype), torch.rand(6, 8, generator=g, dtype=dtype)),
            (torch.randn(1, 1, 3, generator=g, dtype=dtype), torch.rand(1, 3, generator=g, dtype=dtype))]


def _kk_pre(dtype):
    g = _gen(4)
    B, T, C, H = 2, 5, 8, 2
    return [(torch.randn(B, T, C, generator=g, dtype=dtype), torch.randn(B, T, C, generator=g, dtype=dtype),
             torch.randn(C, generator=g, dtype=dtype), torch.rand(C, generator=g, dtype=dtype) + 0.5,
             torch.rand(C, generator=g, dtype=dtype), H)]


def _lnx_rkvres_xg(dtype):
    g = _gen(5)
    B, T, C, H = 2, 5, 8, 2
    x = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    return [(x(B, T, C), x(B, T, C), x(B, T, C), x(B, T, C), x(H, C // H), x(B, T, C), 1 + 0.1 * x(C), 0.1 * x(C),
             H, 64e-5)]


def _vres_gate(dtype):
    g = _gen(6)
    x = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    return [(x(2, 5, 8), x(2, 5, 8), x(2, 5, 8), x(8))]


def _relu_square(dtype):
    g = _gen(7)
    return [(torch.randn(2, 5, 8, generator=g, dtype=dtype),), (torch.randn(7, generator=g, dtype=dtype),)]


def _cross_entropy_l2wrap(dtype):
    g = _gen(8)
    M, V = 6, 11
    return [(3 * torch.randn(M, V, generator=g, dtype=dtype), torch.randint(0, V, (M,), generator=g)),
            (torch.randn(1, 2, generator=g, dtype=dtype), torch.tensor([1]))]


# Each differentiable op's argument tuples, by dtype.
FORWARD = {
    "wkv7": _wkv7,
    "wkv7_state": _wkv7_state,
    "wkv7_state_passing": _wkv7_state_passing,
    "wkv7_reset": _wkv7_reset,
    "wkv7_raw_decay": _wkv7_raw_decay,
    "token_shift_mix": _token_shift_mix,
    "kk_pre": _kk_pre,
    "lnx_rkvres_xg": _lnx_rkvres_xg,
    "vres_gate": _vres_gate,
    "relu_square": _relu_square,
    "cross_entropy_l2wrap": _cross_entropy_l2wrap,
}


# ---- the composite references (plain ATen, differentiated by autograd) ----

def wkv7_reference(r, w, k, v, a, b, s0=None, decay=None, final_state=False, reset=None, s_reset=None):
    """The WKV-7 recurrence, state S [B, H, N(value), N(key)]: sa = S a ; S = S diag(d) + sa b^T +
    v k^T ; y = S r, with d = exp(-exp(w)). With final_state, (y, S_T) with S_T in s0's dtype.
    With reset [B, T], S = s_reset before every marked step."""
    B, T, H, N = r.shape
    d = torch.exp(-torch.exp(w)) if decay is None else decay
    S = r.new_zeros(B, H, N, N) if s0 is None else s0.expand(B, H, N, N).to(r.dtype)
    ys = []
    for t in range(T):
        if reset is not None:
            S = torch.where(reset[:, t, None, None, None], s_reset.expand(B, H, N, N).to(r.dtype), S)
        sa = torch.einsum("bhij,bhj->bhi", S, a[:, t])
        S = S * d[:, t, :, None, :] + sa[..., None] * b[:, t, :, None, :] + v[:, t, ..., None] * k[:, t, :, None, :]
        ys.append(torch.einsum("bhij,bhj->bhi", S, r[:, t]))
    if final_state:
        return torch.stack(ys, 1), S.to(s0.dtype)
    return torch.stack(ys, 1)


def _kk_pre_reference(k, a_in, a0, k_k, k_a, H):
    B, T, C = k.shape
    a = torch.sigmoid(a0 + a_in)
    kk = F.normalize((k * k_k).view(B, T, H, C // H), dim=-1).view(B, T, C)
    return k * (1 + (a - 1) * k_a), -kk, kk * a


def _lnx_rkvres_xg_reference(y, r, k, v, r_k, g, ln_w, ln_b, H, eps):
    B, T, C = y.shape
    x = F.group_norm(y.view(B * T, C), H, ln_w, ln_b, eps).view(B, T, C)
    rk = (r.view(B, T, H, -1) * k.view(B, T, H, -1) * r_k).sum(-1, keepdim=True)
    return (x + (rk * v.view(B, T, H, -1)).view(B, T, C)) * g


def _cross_entropy_l2wrap_reference(logits, targets):
    """Cross entropy, plus L2Wrap's gradient term 1e-4 max / M at each row's (first) argmax: a zero
    in value (t - t.detach()) that adds exactly that gradient."""
    x = logits.float() if logits.dtype in (torch.bfloat16, torch.half) else logits
    at_max = x.gather(1, x.argmax(-1, keepdim=True))
    t = (1e-4 / x.shape[0]) * (at_max.detach() * at_max).sum()
    return F.cross_entropy(x, targets) + (t - t.detach())


REFERENCE = {
    "wkv7": wkv7_reference,
    "wkv7_state": lambda r, w, k, v, a, b, s0: wkv7_reference(r, w, k, v, a, b, s0=s0),
    "wkv7_state_passing": lambda r, w, k, v, a, b, s0: wkv7_reference(r, w, k, v, a, b, s0=s0, final_state=True),
    "wkv7_reset": lambda r, w, k, v, a, b, s0, reset, s_reset: wkv7_reference(
        r, w, k, v, a, b, s0=s0, final_state=True, reset=reset, s_reset=s_reset),
    "wkv7_raw_decay": lambda r, x, k, v, a, b: wkv7_reference(r, -F.softplus(-x) - 0.5, k, v, a, b),
    "token_shift_mix": lambda x, mix: x + (F.pad(x, (0, 0, 1, -1)) - x) * mix[:, None, None, :],
    "kk_pre": _kk_pre_reference,
    "lnx_rkvres_xg": _lnx_rkvres_xg_reference,
    "vres_gate": lambda v, v_first, v_in, v0: v + (v_first - v) * torch.sigmoid(v0 + v_in),
    "relu_square": lambda x: torch.relu(x).square(),
    "cross_entropy_l2wrap": _cross_entropy_l2wrap_reference,
}


# ---- the samples of every row ----

def _to(args, device, requires_grad):
    return tuple(a.detach().to(device).requires_grad_(requires_grad and a.is_floating_point())
                 if isinstance(a, torch.Tensor) else a for a in args)


def outputs(result):
    return result if isinstance(result, tuple) else (result,)


def output_gradients(result, seed=9):
    """One random gradient per output of an op (what its _backward takes after the arguments)."""
    g = _gen(seed)
    return tuple(torch.randn(o.shape, generator=g, dtype=o.dtype).to(o.device) for o in outputs(result))


def sample_inputs(ops, name, dtype, requires_grad=False, device="cpu"):
    """The argument tuples of row `name` of ops/op_table.h (requires_grad on the floating-point
    Tensor arguments of differentiable ops; the _forward/_backward pieces never take it)."""
    if name in FORWARD:
        make = FORWARD[name]
        if name == "wkv7_raw_decay" and device != "cpu":  # the CUDA kernel's shapes: N = 64, T % 16 == 0
            make = lambda dt: [scan_inputs(dt, B=1, T=16, H=1, N=64, raw_decay=True)]  # noqa: E731
        return [_to(args, device, requires_grad) for args in make(dtype)]
    if name.endswith("_forward") and name[: -len("_forward")] in SCANS:
        return sample_inputs(ops, name[: -len("_forward")], dtype, device=device)
    if name.endswith("_backward"):
        base = name[: -len("_backward")]
        samples = []
        for args in sample_inputs(ops, base, dtype, device=device):
            if base in SCANS:  # <op>_forward returns <op>'s outputs, then the two saved tensors
                *outs, saved_state, saved_sa = getattr(ops, base + "_forward")(*args)
                samples.append(args + output_gradients(tuple(outs)) + (saved_state, saved_sa))
            else:
                samples.append(args + output_gradients(getattr(ops, base)(*args)))
        return samples
    raise KeyError(f"no samples for op {name!r}: add it to tests/python/op_samples.py")


def row_names():
    """The rows the samples cover: every op of FORWARD, the scans' _forward and every _backward."""
    names = set(FORWARD)
    names |= {s + "_forward" for s in SCANS}
    names |= {n + "_backward" for n in FORWARD}
    return names
