#!/usr/bin/env python3
"""A roofline model of one training step on an NVIDIA H100 (SXM: 3.35 TB/s HBM3, 989 TFLOP/s dense
bf16), for this project's trainer and the seed's, without a GPU.

Every kernel the step launches is listed from the code (one table per layer, below), with the bytes
it moves and the FLOPs it does, taken from the shapes. A kernel costs

    max(bytes / HBM_BYTES_PER_S, flops / BF16_FLOPS_PER_S) + LAUNCH_S

and a step costs the sum over its kernels. The rows: ours with fused_ops 0 (the composite ATen code),
ours with fused_ops 1 (the fused ops of ops/op_table.h), ours with fused_ops 1 and head_chunk (head,
cross-entropy and L2Wrap in chunks of rows), and the seed (BlinkDL RWKV-LM RWKV-v7/train_temp at
230d32b, as the GPU kit's seed_bench.py runs it: JIT off, bf16 weights, fp32 masters, fused
AdamW, torch.utils.checkpoint per block for grad_cp 1, cross-entropy on logits.float()).

How the kernels were counted (analytically; no profiler run is needed to use this script):
  - matmuls: forward 2*M*N*K FLOPs, backward twice that as two kernels (dX and dW); bytes are the
    operands and the result in bf16. at::linear / at::matmul on [B, T, C] fold into one mm.
  - each ATen op of the composite forward is one kernel reading its inputs and writing its output;
    its autograd backward is the ops of PyTorch's derivative formula (a broadcast [C] parameter's
    gradient is a mul and a sum; div's is six ops; pow(x, 2)'s three; see the tables); autograd
    adds one kernel each time a tensor's gradient arrives a second time (the gradient
    accumulation: "acc" rows). The composite tables' counts were checked once (torch 2.11, CPU)
    against torch.profiler on a Python transcription of the composite block: per layer > 0, 73
    kernels forward and 139 backward; layer 0, 67 and 130 (the CPU's one-kernel layer and group
    norm backward counted as CUDA's 2 and 3, its scalar-wrapping copies left out).
  - the fused ops: one kernel forward; backward one main kernel plus, where a [C] parameter gets a
    gradient, a partial-sums kernel and one sum per gradient (ops/<op>/<op>_kernels.cuh).
  - the WKV-7 scan (ours' and the seed's kernel alike): one kernel forward, one backward; forward
    ~4 N^2 multiply-adds per (b, t, h), backward ~3x; bytes: six [B,T,H,N] bf16 inputs, y, the
    states saved every 16 steps (fp32 B*H*(T/16)*N*N) and S.a (fp32 [B,T,H,N]).
  - grad_cp 1: each block's forward runs twice (once without a graph, once inside the backward).
  - the optimizer (ours rwkv7/train/optim.cpp; the seed bench the same scheme): per parameter a
    bf16->fp32 copy of its gradient, a multi-tensor norm, the clip multiply (assumed to fire),
    the fused AdamW over fp32 masters and moments, per parameter an fp32->bf16 copy back: memory-bound
    passes over the parameters. Multi-tensor launches follow ATen's chunking (65536 elements a
    chunk, 320 blocks and 110/64/48/36/30 tensors a launch for 1..5 tensor lists).

What the model cannot see:
  - the WKV-7 recurrence is latency-bound (a sequential scan over T, one block per (head, batch)),
    not roofline-bound: its modelled time is far below what it takes;
  - cache reuse (L2 is 50 MB: many of the small per-layer tensors never reach HBM twice), and
    kernels reading a tensor more than once;
  - kernels overlapping each other, and the host running ahead of the GPU: a launch's overhead is
    hidden whenever the GPU is still busy with earlier long kernels, and CUDA graphs remove it;
    summing LAUNCH_S over every kernel is the pessimistic side;
  - cuBLAS below peak: real bf16 GEMMs on these shapes reach perhaps 60-80% of 989 TFLOP/s, and the
    thin LoRA matmuls (K or N of 32-128) less;
  - the allocator, host synchronisations (loss.item(), the clip norm), data loading.

Usage: gpu_model.py [--out FILE] [--n-layer 12 --n-embd 768 --head-size 64 --vocab 65536
                     --ctx-len 512 --micro-bsz 16,2 --grad-cp 1,0 --head-chunk 512 --launch-us 4]
Without --out the JSON goes to stdout. Deterministic: the same arguments give the same bytes.
"""
import argparse
import json
import math
import sys
from dataclasses import dataclass

HBM_BYTES_PER_S = 3.35e12  # H100 SXM5 HBM3, datasheet
BF16_FLOPS_PER_S = 989e12  # H100 SXM5 dense bf16 tensor cores, datasheet (no sparsity)
# Per kernel: LibTorch's eager dispatch of one op plus cudaLaunchKernel costs a few microseconds of
# host time (about 3-6 us on a server CPU), and a dependent kernel cannot start sooner than ~1-2 us
# after the last one ends. When kernels are shorter than that, the GPU waits on the host and each
# launch costs about this much; 4 us is the middle of that range. (Hidden when the GPU is busy.)
LAUNCH_US = 4.0
BF16, FP32, I64 = 2, 4, 8

CHUNK = 16  # the WKV-7 kernels' state-saving interval (ours and the seed's)
MTA_CHUNK, MTA_MAX_BLOCKS, MTA_MAX_TENSORS = 65536, 320, {1: 110, 2: 64, 3: 48, 4: 36, 5: 30}
SEED_IMPL = "seed-230d32b"
PRECISION = "bf16 activations and matmuls, fp32 master weights and AdamW moments"
DEVICE = "NVIDIA H100 SXM (modelled)"


@dataclass(frozen=True)
class Shape:
    n_layer: int
    n_embd: int
    head_size: int
    vocab: int
    ctx_len: int
    micro_bsz: int

    @property
    def n_head(self):
        return self.n_embd // self.head_size

    @property
    def rows(self):  # M = B*T, the rows every [B, T, C] tensor has
        return self.micro_bsz * self.ctx_len

    @property
    def dim_ffn(self):  # the seed's channel mix: 4 C (model_config.cpp seed_shape)
        return 4 * self.n_embd

    def lora(self, factor):  # the seed's LoRA widths: max(32, round(factor sqrt(C) / 32) * 32)
        return max(32, int(round(factor * math.sqrt(self.n_embd) / 32)) * 32)

    @property
    def d_decay(self):
        return self.lora(2.5)

    @property
    def d_aaa(self):
        return self.lora(2.5)

    @property
    def d_mv(self):
        return self.lora(1.7)

    @property
    def d_gate(self):
        return self.lora(5.0)


@dataclass(frozen=True)
class Kernel:
    name: str
    kind: str  # mm, wkv, ew (elementwise, norms, reductions, accumulation), loss, opt, io
    bytes: float
    flops: float


# ---- kernel builders ----

def mm(name, m, k, n):
    """Y[m, n] = X[m, k] W[k, n] in bf16: one kernel."""
    return Kernel(name, "mm", BF16 * (m * k + k * n + m * n), 2.0 * m * k * n)


def mm_bwd(name, m, k, n):
    """The backward of mm(m, k, n): dX = dY W^T and dW = X^T dY, two kernels."""
    b = BF16 * (m * k + k * n + m * n)
    return [Kernel(name + " dX", "mm", b, 2.0 * m * k * n), Kernel(name + " dW", "mm", b, 2.0 * m * k * n)]


def ew(name, n, reads=1, writes=1, extra=0.0, elt=BF16, kind="ew"):
    """An elementwise kernel over n elements: `reads` inputs and `writes` outputs of n, plus `extra`
    bytes (a broadcast operand, statistics); one FLOP per element read (they are memory-bound)."""
    return Kernel(name, kind, elt * n * (reads + writes) + extra, float(n * max(reads, 1)))


def bc(name, n, c):
    """x op p with p a broadcast [C] (or [H, N]) parameter."""
    return ew(name, n, reads=1, extra=BF16 * c)


def red(name, n_in, n_out, elt=BF16, kind="ew"):
    """A reduction of n_in elements to n_out (a sum over rows for a [C] gradient, or over N)."""
    return Kernel(name, kind, elt * (n_in + n_out), float(n_in))


def acc(name, n, elt=BF16):
    """Autograd's gradient accumulation when a tensor's gradient arrives again: one add."""
    return ew("acc " + name, n, reads=2)


def bcast_param_grad(name, n, c):
    """d(p) of x * p with p broadcast: (grad * x) summed over the rows: a mul and a sum."""
    return [ew(f"d{name}: grad*x", n, reads=2), red(f"d{name}: sum rows", n, c)]


def mul_bwd(name, n):
    """a * b, both [n] and both wanting a gradient: grad*b and grad*a."""
    return [ew(f"{name} d(lhs)", n, reads=2), ew(f"{name} d(rhs)", n, reads=2)]


def layer_norm_fwd(name, m, c):
    return [ew(name, m * c, extra=BF16 * 2 * c + FP32 * 2 * m)]  # writes mean, rstd (fp32)


def layer_norm_bwd(name, m, c):
    stats = FP32 * 2 * m
    return [ew(name + " dX", m * c, reads=2, extra=stats + BF16 * c),
            ew(name + " dgamma dbeta", m * c, reads=2, writes=0, extra=stats + BF16 * 2 * c)]


def group_norm_fwd(name, m, c, h):  # at::group_norm of [M, C]: moments, then the affine pass
    stats = FP32 * 2 * m * h
    return [ew(name + " moments", m * c, writes=0, extra=stats), ew(name + " apply", m * c, extra=stats + BF16 * 2 * c)]


def group_norm_bwd(name, m, c, h):  # GroupNorm1dBackward: fused params, dX, dgamma/dbeta
    stats = FP32 * 2 * m * h
    return [ew(name + " params", m * c, reads=2, writes=0, extra=2 * stats + BF16 * c),
            ew(name + " dX", m * c, reads=2, extra=2 * stats + BF16 * c),
            ew(name + " dgamma dbeta", m * c, reads=2, writes=0, extra=stats + BF16 * 2 * c)]


def wkv_fwd(s, name="wkv7 forward"):
    e = s.rows * s.n_embd
    saved = FP32 * s.micro_bsz * s.n_head * (s.ctx_len // CHUNK) * s.head_size ** 2 + FP32 * e
    return Kernel(name, "wkv", BF16 * 7 * e + saved, 8.0 * e * s.head_size)


def wkv_bwd(s, name="wkv7 backward"):
    e = s.rows * s.n_embd
    saved = FP32 * s.micro_bsz * s.n_head * (s.ctx_len // CHUNK) * s.head_size ** 2 + FP32 * e
    return Kernel(name, "wkv", BF16 * 13 * e + saved, 24.0 * e * s.head_size)


def fused(name, n, reads, writes, extra=0.0):
    return ew(name, n, reads=reads, writes=writes, extra=extra)


def partial_sums(name, partial_rows, width, sums):
    """A fused backward's [C] gradients: `sums` kernels each summing partial_rows fp32 rows of width."""
    return [Kernel(f"{name} sum partials {q}", "ew", FP32 * partial_rows * width + BF16 * width, float(partial_rows * width))
            for q in range(sums)]


# ---- one layer, the composite path (ours fused_ops 0; the seed's model.py runs the same ops) ----

def time_mix_composite(s, layer0):
    """time_mix.cpp TimeMixImpl::forward (fused_ops 0) = the seed's RWKV_Tmix_x070.forward, op by op.
    Returns (forward kernels, backward kernels). Layer 0 has no value residual (v_first = v)."""
    M, C, H = s.rows, s.n_embd, s.n_head
    E, EH = M * C, M * H
    dd, da, dv, dg = s.d_decay, s.d_aaa, s.d_mv, s.d_gate
    fwd = [
        # xx = token_shift(x) - x: constant_pad_nd is a fill and a copy
        ew("pad fill", E, reads=0), ew("pad copy", E), ew("xx = shifted - x", E, reads=2),
        # xr..xg = x + xx * x_p: a mul and an add each
        *[k for p in "rwkvag" for k in (bc(f"xx * x_{p}", E, C), ew(f"x{p} = x + .", E, reads=2))],
        mm("r = receptance(xr)", M, C, C),
        # w = -softplus(-(w0 + tanh(xw w1) w2)) - 0.5
        mm("xw w1", M, C, dd), ew("tanh", M * dd), mm("tanh(.) w2", M, dd, C), bc("w0 + .", E, C),
        ew("neg", E), ew("softplus", E), ew("neg", E), ew("- 0.5", E),
        mm("k = key(xk)", M, C, C), mm("v = value(xv)", M, C, C),
    ]
    if not layer0:  # v = v + (v_first - v) * sigmoid(v0 + xv v1 v2)
        fwd += [mm("xv v1", M, C, dv), mm("(.) v2", M, dv, C), bc("v0 + .", E, C), ew("sigmoid", E),
                ew("v_first - v", E, reads=2), ew("(.) * sigmoid", E, reads=2), ew("v + .", E, reads=2)]
    fwd += [
        # a = sigmoid(a0 + xa a1 a2); g = sigmoid(xg g1) g2
        mm("xa a1", M, C, da), mm("(.) a2", M, da, C), bc("a0 + .", E, C), ew("sigmoid", E),
        mm("xg g1", M, C, dg), ew("sigmoid", M * dg), mm("sigmoid(.) g2", M, dg, C),
        # kk = normalize(k * k_k) per head: mul, norm, clamp_min, div
        bc("k * k_k", E, C), red("norm over N", E, EH), ew("clamp_min", EH), ew("kk = . / norm", E, extra=BF16 * EH),
        # k = k * (1 + (a - 1) * k_a)
        ew("a - 1", E), bc("(.) * k_a", E, C), ew("1 + .", E), ew("k * .", E, reads=2),
        # the scan's a and b: -kk, kk * a
        ew("-kk", E), ew("kk * a", E, reads=2),
        wkv_fwd(s),
        *group_norm_fwd("ln_x", M, C, H),
        # y += (sum_n r k r_k) v
        ew("r * k", E, reads=2), bc("(.) * r_k", E, C), red("sum over N", E, EH), ew("rk * v", E, extra=BF16 * EH),
        ew("y + .", E, reads=2),
        ew("y * g", E, reads=2), mm("output(.)", M, C, C),
    ]
    bwd = [
        *mm_bwd("output(.)", M, C, C), *mul_bwd("y * g", E),
        # (y + .: the gradient passes through)  rk * v: d(rk) is a mul and a sum over N, d(v) a mul
        ew("d(rk): grad*v", E, reads=2), red("d(rk): sum over N", E, EH), ew("d(v): grad*rk", E, extra=BF16 * EH),
        # (.) * r_k: d(.) a mul, d(r_k) a mul and a sum;  r * k: two muls
        ew("d(r*k): grad*r_k", E, reads=0, extra=BF16 * (EH + C)), *bcast_param_grad("r_k", E, C), *mul_bwd("r * k", E),
        *group_norm_bwd("ln_x", M, C, H),
        wkv_bwd(s),
        *mul_bwd("kk * a", E), ew("d(-kk): neg", E), acc("kk", E),
        # k * (1 + (a-1) k_a): two muls; (a-1) * k_a: d(a) a mul, d(k_a) a mul and a sum
        *mul_bwd("k * .", E), bc("d(a-1): grad*k_a", E, C), *bcast_param_grad("k_a", E, C),
        # kk = h / clamp(norm(h)): div's backward: grad/c; -grad * ((h/c)/c) summed over N
        ew("d(h): grad / c", E, extra=BF16 * EH), ew("h / c", E, extra=BF16 * EH), ew("(.) / c", E, extra=BF16 * EH),
        ew("-grad", E), ew("-grad * .", E, reads=2), red("d(c): sum over N", E, EH),
        ew("clamp_min: ge", EH), ew("clamp_min: where", EH, reads=2),
        ew("norm: grad / norm", EH, reads=2), ew("norm: norm == 0", EH), ew("norm: masked_fill_", EH, reads=2),
        ew("norm: h * .", E, extra=BF16 * EH), acc("h = k * k_k", E),
        bc("d(k): grad*k_k", E, C), *bcast_param_grad("k_k", E, C),
        acc("k", E), acc("a", E), acc("r", E), acc("k (scan)", E), acc("v (scan)", E),
        # g = sigmoid(xg g1) g2
        *mm_bwd("sigmoid(.) g2", M, dg, C), ew("sigmoid backward", M * dg, reads=2), *mm_bwd("xg g1", M, C, dg),
        # a = sigmoid(a0 + xa a1 a2)
        ew("sigmoid backward", E, reads=2), red("d(a0): sum rows", E, C), *mm_bwd("(.) a2", M, da, C),
        *mm_bwd("xa a1", M, C, da),
    ]
    if not layer0:
        bwd += [*mul_bwd("(v_first - v) * sigmoid", E), ew("d(v): neg", E), ew("sigmoid backward", E, reads=2),
                red("d(v0): sum rows", E, C), *mm_bwd("(.) v2", M, dv, C), *mm_bwd("xv v1", M, C, dv),
                acc("v", E), acc("v_first", E)]
    else:  # v is v_first too: the later layers' gradient arrives
        bwd += [acc("v (as v_first)", E)]
    bwd += [*mm_bwd("value(xv)", M, C, C)]
    if not layer0:
        bwd += [acc("xv", E)]
    bwd += [
        *mm_bwd("key(xk)", M, C, C),
        # w: (- 0.5 passes) neg, softplus backward, neg, w0's sum, the two LoRA matmuls, tanh backward
        ew("neg", E), ew("softplus backward", E, reads=2), ew("neg", E), red("d(w0): sum rows", E, C),
        *mm_bwd("tanh(.) w2", M, dd, C), ew("tanh backward", M * dd, reads=2), *mm_bwd("xw w1", M, C, dd),
        *mm_bwd("receptance(xr)", M, C, C),
        # six lerps: (x + . passes) xx * x_p: d(xx) a mul, d(x_p) a mul and a sum
        *[k for p in "rwkvag" for k in (bc(f"d(xx): grad*x_{p}", E, C), *bcast_param_grad(f"x_{p}", E, C))],
        *[acc("xx", E) for _ in range(5)],
        ew("d(x) of shifted - x: neg", E),
        ew("pad backward fill", E, reads=0), ew("pad backward copy", E),
        # x reaches the pad, the sub and the six lerps: eight gradients, seven adds
        *[acc("x", E) for _ in range(7)],
    ]
    return fwd, bwd


def channel_mix_composite(s):
    """channel_mix.cpp ChannelMixImpl::forward (fused_ops 0) = the seed's RWKV_CMix_x070.forward."""
    M, C, F = s.rows, s.n_embd, s.dim_ffn
    E, EF = M * C, M * F
    fwd = [ew("pad fill", E, reads=0), ew("pad copy", E), ew("xx = shifted - x", E, reads=2),
           bc("xx * x_k", E, C), ew("x + .", E, reads=2), mm("key(.)", M, C, F), ew("relu", EF),
           ew("square (pow 2)", EF), mm("value(.)", M, F, C)]
    bwd = [*mm_bwd("value(.)", M, F, C),
           # pow(x, 2)'s backward: grad * (2 * x.pow(1)): a copy, a mul by 2, a mul
           ew("pow backward: x.pow(1)", EF), ew("pow backward: 2 * .", EF), ew("pow backward: grad * .", EF, reads=2),
           ew("relu backward (threshold_backward)", EF, reads=2),
           *mm_bwd("key(.)", M, C, F),
           bc("d(xx): grad*x_k", E, C), *bcast_param_grad("x_k", E, C), ew("d(x) of shifted - x: neg", E),
           ew("pad backward fill", E, reads=0), ew("pad backward copy", E),
           acc("x", E), acc("x", E)]  # x reaches the pad, the sub and the add
    return fwd, bwd


def block_rest(s, layer0):
    """block.cpp: ln0 (layer 0), ln1, ln2 and the two residual adds."""
    M, C = s.rows, s.n_embd
    E = M * C
    fwd = layer_norm_fwd("ln0", M, C) if layer0 else []
    fwd += [*layer_norm_fwd("ln1", M, C), ew("x + att", E, reads=2), *layer_norm_fwd("ln2", M, C),
            ew("x + ffn", E, reads=2)]
    bwd = [*layer_norm_bwd("ln2", M, C), acc("x (ln2, residual)", E), *layer_norm_bwd("ln1", M, C),
           acc("x (ln1, residual)", E)]
    if layer0:
        bwd += layer_norm_bwd("ln0", M, C)
    return fwd, bwd


# ---- one layer, the fused path (ours fused_ops 1) ----

def time_mix_fused(s, layer0):
    """time_mix.cpp TimeMixImpl::forward_fused. The six lerps come out of token_shift_mix as one
    [6, B, T, C] tensor and are taken with unbind(0), whose backward is one stack of the six
    gradients (lerps[j], six at::select, cost six zeroed [6, B, T, C] tensors and five adds of them
    until 2026-12-06)."""
    M, C, H = s.rows, s.n_embd, s.n_head
    E = M * C
    dd, da, dv, dg = s.d_decay, s.d_aaa, s.d_mv, s.d_gate
    head_blocks = -(-M // 32)  # ops/cuda_common.cuh kHeadRowsPerBlock
    mix_partials = -(-M // 64)  # kMixRowsPerPartial, kVresRowsPerPartial
    fwd = [
        ew("cat(x_r..x_g)", 6 * C),
        fused("token_shift_mix (6)", E, reads=1, writes=6, extra=BF16 * 6 * C),
        mm("r = receptance(xr)", M, C, C),
        mm("xw w1", M, C, dd), ew("tanh", M * dd), mm("tanh(.) w2", M, dd, C), bc("w_raw = w0 + .", E, C),
        mm("v = value(xv)", M, C, C),
    ]
    if not layer0:
        fwd += [mm("xv v1", M, C, dv), mm("(.) v2", M, dv, C), fused("vres_gate", E, reads=3, writes=1, extra=BF16 * C)]
    fwd += [
        mm("xg g1", M, C, dg), ew("sigmoid", M * dg), mm("sigmoid(.) g2", M, dg, C),
        mm("key(xk)", M, C, C), mm("xa a1", M, C, da), mm("(.) a2", M, da, C),
        fused("kk_pre", E, reads=2, writes=3, extra=BF16 * 3 * C),
        wkv_fwd(s, "wkv7_raw_decay forward"),
        fused("lnx_rkvres_xg", E, reads=5, writes=1, extra=BF16 * 3 * C),
        mm("output(.)", M, C, C),
    ]
    bwd = [
        *mm_bwd("output(.)", M, C, C),
        fused("lnx_rkvres_xg backward", E, reads=6, writes=5, extra=FP32 * head_blocks * 3 * C),
        *partial_sums("lnx_rkvres_xg", head_blocks, C, 3),
        wkv_bwd(s, "wkv7_raw_decay backward"),
        acc("r", E), acc("k", E), acc("v", E),
        fused("kk_pre backward", E, reads=5, writes=2, extra=FP32 * head_blocks * 3 * C),
        *partial_sums("kk_pre", head_blocks, C, 3),
        *mm_bwd("(.) a2", M, da, C), *mm_bwd("xa a1", M, C, da), *mm_bwd("key(xk)", M, C, C),
        *mm_bwd("sigmoid(.) g2", M, dg, C), ew("sigmoid backward", M * dg, reads=2), *mm_bwd("xg g1", M, C, dg),
    ]
    if not layer0:
        bwd += [fused("vres_gate backward", E, reads=4, writes=3, extra=BF16 * C),
                fused("vres_gate dv0 partials", E, reads=4, writes=0, extra=FP32 * mix_partials * C),
                *partial_sums("vres_gate", mix_partials, C, 1),
                *mm_bwd("(.) v2", M, dv, C), *mm_bwd("xv v1", M, C, dv), acc("v_first", E)]
    else:
        bwd += [acc("v (as v_first)", E)]
    bwd += [*mm_bwd("value(xv)", M, C, C)]
    if not layer0:
        bwd += [acc("xv", E)]
    bwd += [
        red("d(w0): sum rows", E, C), *mm_bwd("tanh(.) w2", M, dd, C), ew("tanh backward", M * dd, reads=2),
        *mm_bwd("xw w1", M, C, dd), *mm_bwd("receptance(xr)", M, C, C),
        ew("unbind backward: stack of the six lerps' gradients", 6 * E),
        fused("token_shift_mix backward dx", E, reads=6, writes=1, extra=BF16 * 6 * C),
        fused("token_shift_mix dmix partials", E, reads=7, writes=0, extra=FP32 * mix_partials * 6 * C),
        *partial_sums("token_shift_mix", mix_partials, 6 * C, 1),
    ]
    return fwd, bwd


def channel_mix_fused(s):
    """channel_mix.cpp, fused_ops 1: value(relu_square(key(token_shift_mix(x, x_k).squeeze(0)))):
    the squeeze is a view, its backward no kernel."""
    M, C, F = s.rows, s.n_embd, s.dim_ffn
    E, EF = M * C, M * F
    mix_partials = -(-M // 64)
    fwd = [fused("token_shift_mix (1)", E, reads=1, writes=1, extra=BF16 * C), mm("key(.)", M, C, F),
           fused("relu_square", EF, reads=1, writes=1), mm("value(.)", M, F, C)]
    bwd = [*mm_bwd("value(.)", M, F, C), fused("relu_square backward", EF, reads=2, writes=1),
           *mm_bwd("key(.)", M, C, F),
           fused("token_shift_mix backward dx", E, reads=1, writes=1, extra=BF16 * C),
           fused("token_shift_mix dmix partials", E, reads=2, writes=0, extra=FP32 * mix_partials * C),
           *partial_sums("token_shift_mix", mix_partials, C, 1)]
    return fwd, bwd


def layer_kernels(s, layer, fused_ops):
    """One block: (forward, backward) kernel lists."""
    layer0 = layer == 0
    tm = time_mix_fused(s, layer0) if fused_ops else time_mix_composite(s, layer0)
    cm = channel_mix_fused(s) if fused_ops else channel_mix_composite(s)
    rest = block_rest(s, layer0)
    return tm[0] + cm[0] + rest[0], rest[1] + cm[1] + tm[1]


# ---- the ends of the model and the loss ----

def embedding(s):
    M, C, V = s.rows, s.n_embd, s.vocab
    E = M * C
    fwd = [Kernel("embedding (index_select)", "ew", I64 * M + BF16 * 2 * E, float(E))]
    # embedding_dense_backward on CUDA, over 3072 indices: sort the ids, find segments, partial sums
    # per segment, scatter into a zeroed [V, C]: about 12 kernels (radix sort and scans included)
    bwd = [Kernel("embedding backward: zero [V, C]", "ew", BF16 * V * C, float(V * C))]
    bwd += [Kernel(f"embedding backward: sort/segment {i}", "ew", I64 * M * 2, float(M)) for i in range(9)]
    bwd += [Kernel("embedding backward: partial sums", "ew", BF16 * E + FP32 * E, float(E)),
            Kernel("embedding backward: scatter", "ew", FP32 * E + BF16 * E, float(E))]
    return fwd, bwd


def head_full(s):
    M, C, V = s.rows, s.n_embd, s.vocab
    return ([*layer_norm_fwd("ln_out", M, C), mm("head", M, C, V)],
            [*mm_bwd("head", M, C, V), *layer_norm_bwd("ln_out", M, C)])


def loss_ours_composite(s):
    """loss.cpp cross_entropy_l2wrap(fused = false): at::cross_entropy_loss on bf16 logits, L2Wrap."""
    MV = s.rows * s.vocab
    M = s.rows
    fwd = [ew("log_softmax", MV, kind="loss"), Kernel("nll_loss", "loss", BF16 * M + I64 * M, float(M))]
    bwd = [Kernel("loss.backward seed (ones)", "loss", FP32, 1.0),
           # L2Wrap::backward: max over V, zeros_like, maxx * factor, scatter_, gy * grad
           red("L2Wrap: max over V", MV, M * (1 + I64 // BF16), kind="loss"), ew("L2Wrap: zeros_like", MV, reads=0, kind="loss"),
           Kernel("L2Wrap: maxx * factor", "loss", BF16 * 2 * M, float(M)),
           Kernel("L2Wrap: scatter_", "loss", (BF16 * 2 + I64) * M, float(M)),
           ew("L2Wrap: gy * grad", MV, kind="loss"),
           # cross-entropy: nll_loss backward (zeros, scatter), log_softmax backward
           ew("nll_loss backward: zeros", MV, reads=0, kind="loss"),
           Kernel("nll_loss backward: scatter", "loss", (BF16 + I64) * M, float(M)),
           ew("log_softmax backward", MV, reads=2, kind="loss"),
           ew("acc logits (CE + L2Wrap)", MV, reads=2, kind="loss")]
    return fwd, bwd


def loss_seed(s):
    """seed_bench.py: F.cross_entropy(logits.view(-1, V).float(), targets), then the seed's L2Wrap
    (model.py: its backward returns gy without multiplying by the incoming gradient)."""
    MV = s.rows * s.vocab
    M = s.rows
    fwd = [Kernel("logits.float()", "loss", (BF16 + FP32) * MV, float(MV)),
           ew("log_softmax (fp32)", MV, elt=FP32, kind="loss"), Kernel("nll_loss", "loss", FP32 * M + I64 * M, float(M))]
    bwd = [Kernel("loss.backward seed (ones)", "loss", FP32, 1.0),
           red("L2Wrap: max over V", MV, M * (1 + I64 // BF16), kind="loss"), ew("L2Wrap: zeros_like", MV, reads=0, kind="loss"),
           Kernel("L2Wrap: maxx * factor", "loss", BF16 * 2 * M, float(M)),
           Kernel("L2Wrap: scatter_", "loss", (BF16 * 2 + I64) * M, float(M)),
           ew("nll_loss backward: zeros (fp32)", MV, reads=0, elt=FP32, kind="loss"),
           Kernel("nll_loss backward: scatter", "loss", (FP32 + I64) * M, float(M)),
           ew("log_softmax backward (fp32)", MV, reads=2, elt=FP32, kind="loss"),
           Kernel("float() backward: to bf16", "loss", (FP32 + BF16) * MV, float(MV)),
           ew("acc logits (CE + L2Wrap)", MV, reads=2, kind="loss")]
    return fwd, bwd


def loss_fused(s):
    """fused::cross_entropy_l2wrap (fused_ops 1): row losses + mean forward, one backward kernel."""
    MV, M = s.rows * s.vocab, s.rows
    fwd = [Kernel("cross_entropy_l2wrap row loss", "loss", BF16 * MV + (I64 + FP32) * M, float(MV)),
           Kernel("cross_entropy_l2wrap mean", "loss", FP32 * (M + 1), float(M))]
    bwd = [Kernel("loss.backward seed (ones)", "loss", FP32, 1.0),
           Kernel("cross_entropy_l2wrap backward", "loss", BF16 * 2 * MV + I64 * M, float(MV))]
    return fwd, bwd


def head_loss_chunked(s, chunk):
    """loss.cpp ChunkedHeadLoss (head_chunk > 0): the head's matmuls, the fused loss and its backward
    chunk by chunk inside the forward, dweight accumulated in fp32; the backward scales the saved
    gradients. ln_out stays outside."""
    M, C, V = s.rows, s.n_embd, s.vocab
    VC = V * C
    fwd = [*layer_norm_fwd("ln_out", M, C),
           Kernel("loss_sum zeros", "loss", FP32, 1.0), ew("dweight zeros (fp32)", VC, reads=0, elt=FP32, kind="loss")]
    for i in range(0, M, chunk):
        m = min(M, i + chunk) - i
        fwd += [mm(f"chunk {i}: logits = h W^T", m, C, V),
                Kernel(f"chunk {i}: cross_entropy_l2wrap row loss", "loss", BF16 * m * V + (I64 + FP32) * m, float(m * V)),
                Kernel(f"chunk {i}: cross_entropy_l2wrap mean", "loss", FP32 * (m + 1), float(m)),
                Kernel(f"chunk {i}: loss * rows", "loss", FP32 * 2, 1.0),
                Kernel(f"chunk {i}: loss_sum +=", "loss", FP32 * 3, 1.0),
                Kernel(f"chunk {i}: full(dloss)", "loss", FP32, 1.0),
                Kernel(f"chunk {i}: cross_entropy_l2wrap backward", "loss", BF16 * 2 * m * V + I64 * m, float(m * V)),
                mm(f"chunk {i}: dlogits W", m, V, C), ew(f"chunk {i}: dhidden rows copy_", m * C, kind="loss"),
                mm(f"chunk {i}: dlogits^T h", V, m, C),
                Kernel(f"chunk {i}: .to(fp32)", "loss", (BF16 + FP32) * VC, float(VC)),
                ew(f"chunk {i}: dweight +=", VC, reads=2, elt=FP32, kind="loss")]
    fwd += [Kernel("dweight to bf16", "loss", (FP32 + BF16) * VC, float(VC)), Kernel("loss_sum / M", "loss", FP32 * 2, 1.0)]
    bwd = [Kernel("loss.backward seed (ones)", "loss", FP32, 1.0),
           Kernel("grad.to(bf16)", "loss", FP32 + BF16, 1.0), ew("dhidden * grad", M * C, kind="loss"),
           Kernel("grad.to(bf16)", "loss", FP32 + BF16, 1.0), ew("dweight * grad", VC, kind="loss"),
           *layer_norm_bwd("ln_out", M, C)]
    return fwd, bwd


# ---- the optimizer ----

def param_tensors(s):
    """Every parameter tensor in model order: (name, numel, AdamW group, gets a gradient).
    Groups as the seed's configure_optimizers: "2x" att.w0, "decay" >= 2-D ".weight", "1x" the rest."""
    C, F, V, H, N = s.n_embd, s.dim_ffn, s.vocab, s.n_head, s.head_size
    out = [("emb.weight", V * C, "decay", True)]
    for layer in range(s.n_layer):
        b = f"blocks.{layer}."
        lns = ["ln0", "ln1", "ln2"] if layer == 0 else ["ln1", "ln2"]
        out += [(b + f"{ln}.{w}", C, "1x", True) for ln in lns for w in ("weight", "bias")]
        out += [(b + f"att.x_{p}", C, "1x", True) for p in "rwkvag"]
        for p, d in (("w", s.d_decay), ("a", s.d_aaa), ("v", s.d_mv)):
            used = p != "v" or layer > 0  # layer 0 never uses v0, v1, v2
            out += [(b + f"att.{p}1", C * d, "1x", used), (b + f"att.{p}2", d * C, "1x", used),
                    (b + f"att.{p}0", C, "2x" if p == "w" else "1x", used)]
        out += [(b + "att.g1", C * s.d_gate, "1x", True), (b + "att.g2", s.d_gate * C, "1x", True),
                (b + "att.k_k", C, "1x", True), (b + "att.k_a", C, "1x", True), (b + "att.r_k", H * N, "1x", True)]
        out += [(b + f"att.{m}.weight", C * C, "decay", True) for m in ("receptance", "key", "value", "output")]
        out += [(b + "att.ln_x.weight", C, "1x", True), (b + "att.ln_x.bias", C, "1x", True),
                (b + "ffn.x_k", C, "1x", True), (b + "ffn.key.weight", F * C, "decay", True),
                (b + "ffn.value.weight", C * F, "decay", True)]
    out += [("ln_out.weight", C, "1x", True), ("ln_out.bias", C, "1x", True), ("head.weight", V * C, "decay", True)]
    return out


def multi_tensor_launches(numels, depth):
    """Kernels ATen's multi_tensor_apply launches over tensors of these sizes with `depth` lists: a
    launch whenever its blocks (one per 65536-element chunk) or its tensors reach their limit."""
    launches = tensors = blocks = 0
    for i, n in enumerate(numels):
        tensors += 1
        chunks = max(1, -(-n // MTA_CHUNK))
        for c in range(chunks):
            blocks += 1
            tensor_done = c == chunks - 1
            if blocks == MTA_MAX_BLOCKS or (tensor_done and tensors == MTA_MAX_TENSORS[depth]) or \
                    (tensor_done and i == len(numels) - 1):
                launches += 1
                blocks = 0
                tensors = 0 if tensor_done else 1
    return launches


def multi_tensor(name, numels, depth, bytes_per_elem):
    n = multi_tensor_launches(numels, depth)
    total = sum(numels)
    return [Kernel(f"{name} [{i}]", "opt", bytes_per_elem * total / n, float(total) / n) for i in range(n)]


def optimizer(s, impl):
    """The step after the backward, ours (optim.cpp) and the seed bench's alike: per parameter
    grad.to(fp32); _foreach_norm (+ its cleanup), stack, norm; the clip's _foreach_mul_; per group
    _foreach_add_(steps) and _fused_adamw_ (reads param, grad, m, v in fp32, writes param, m, v);
    per parameter param.copy_(master) to bf16."""
    params = param_tensors(s)
    with_grad = [n for _, n, _, g in params if g]
    ks = [Kernel(f"grad.to(fp32) {name}", "opt", (BF16 + FP32) * n, float(n)) for name, n, _, g in params if g]
    ks += multi_tensor("_foreach_norm", with_grad, 1, FP32)
    ks += [Kernel("_foreach_norm cleanup", "opt", FP32 * len(with_grad), float(len(with_grad))),
           Kernel("stack norms", "opt", FP32 * 2 * len(with_grad), float(len(with_grad))),
           Kernel("norm of norms", "opt", FP32 * len(with_grad), float(len(with_grad)))]
    if impl == SEED_IMPL:  # clip_grad_norm_: the clip coefficient on the device (add, reciprocal, mul, clamp)
        ks += [Kernel(f"clip coefficient {i}", "opt", FP32 * 2, 1.0) for i in range(4)]
    else:  # ours reads the norm on the host (.item()) and multiplies when it exceeds grad_clip
        ks += [Kernel("norm .item() (device to host)", "opt", FP32, 1.0)]
    ks += multi_tensor("_foreach_mul_ (clip, assumed to fire)", with_grad, 1, 2 * FP32)
    for group in ("1x", "2x", "decay"):
        sizes = [n for _, n, gr, g in params if g and gr == group]
        ks += multi_tensor(f"_foreach_add_(steps) {group}", [1] * len(sizes), 1, 2 * FP32)
        ks += multi_tensor(f"_fused_adamw_ {group}", sizes, 4, 7 * FP32)
    ks += [Kernel(f"copy_ master -> bf16 {name}", "opt", (FP32 + BF16) * n, float(n)) for name, n, _, _ in params]
    return ks


def step_io(s, impl):
    """The batch to the device and the loss to the host."""
    M = s.rows
    if impl == SEED_IMPL:  # idx [B, T+1] to the device; idx[:, :-1] and idx[:, 1:] made contiguous
        return [Kernel("idx to device", "io", I64 * (M + s.micro_bsz), 0.0),
                Kernel("idx[:, :-1] contiguous", "io", 2 * I64 * M, 0.0),
                Kernel("idx[:, 1:] contiguous", "io", 2 * I64 * M, 0.0), Kernel("float(loss)", "io", FP32, 0.0)]
    return [Kernel("x to device", "io", I64 * M, 0.0), Kernel("y to device", "io", I64 * M, 0.0),
            Kernel("loss.item()", "io", FP32, 0.0)]


# ---- a whole step ----

def step_kernels(s, impl, fused_ops, head_chunk, grad_cp):
    """{phase: [Kernel]} for one training step (forward, backward, optimizer)."""
    fwd, bwd = [], []
    emb = embedding(s)
    fwd += emb[0]
    blocks = [layer_kernels(s, layer, fused_ops) for layer in range(s.n_layer)]
    for f, _ in blocks:
        fwd += f
    if head_chunk:
        tail = head_loss_chunked(s, head_chunk)
    else:
        head = head_full(s)
        loss = loss_seed(s) if impl == SEED_IMPL else loss_fused(s) if fused_ops else loss_ours_composite(s)
        tail = (head[0] + loss[0], loss[1] + head[1])
    fwd += tail[0]
    bwd += tail[1]
    for f, b in reversed(blocks):
        bwd += (f if grad_cp else []) + b  # grad_cp: the block's forward again, inside the backward
    bwd += emb[1]
    io = step_io(s, impl)
    return {"forward": io[:-1] + fwd, "backward": bwd + io[-1:], "optimizer": optimizer(s, impl)}


def kernel_seconds(k, launch_s):
    return max(k.bytes / HBM_BYTES_PER_S, k.flops / BF16_FLOPS_PER_S) + launch_s


def summarise(s, impl, fused_ops, head_chunk, grad_cp, launch_us):
    phases = step_kernels(s, impl, fused_ops, head_chunk, grad_cp)
    launch_s = launch_us * 1e-6
    every = [k for ks in phases.values() for k in ks]
    roof = sum(kernel_seconds(k, 0.0) for k in every)
    kinds = {}
    for k in every:
        d = kinds.setdefault(k.kind, {"launches": 0, "bytes": 0.0, "flops": 0.0, "roofline_ms": 0.0})
        d["launches"] += 1
        d["bytes"] += k.bytes
        d["flops"] += k.flops
        d["roofline_ms"] += kernel_seconds(k, 0.0) * 1e3
    for d in kinds.values():
        d["bytes"], d["flops"], d["roofline_ms"] = int(round(d["bytes"])), int(round(d["flops"])), round(d["roofline_ms"], 4)
    tokens = s.rows
    step_s = roof + launch_s * len(every)
    return {
        "impl": impl, "fused_ops": fused_ops, "head_chunk": head_chunk, "grad_cp": grad_cp,
        "device": DEVICE, "precision": PRECISION,
        "n_layer": s.n_layer, "n_embd": s.n_embd, "head_size": s.head_size, "vocab": s.vocab,
        "ctx_len": s.ctx_len, "micro_bsz": s.micro_bsz, "tokens_per_step": tokens,
        "modelled_step_ms": round(step_s * 1e3, 3),
        "roofline_ms": round(roof * 1e3, 3),
        "launch_overhead_ms": round(launch_s * len(every) * 1e3, 3),
        "modelled_tokens_per_s": round(tokens / step_s),
        "bytes": int(round(sum(k.bytes for k in every))),
        "flops": int(round(sum(k.flops for k in every))),
        "launches": len(every),
        "phases": {p: {"launches": len(ks), "ms": round(sum(kernel_seconds(k, launch_s) for k in ks) * 1e3, 3)}
                   for p, ks in phases.items()},
        "by_kind": dict(sorted(kinds.items())),
    }


def rows_for(s, grad_cp, head_chunk, launch_us):
    impls = [("ours-fused0", 0, 0), ("ours-fused1", 1, 0), (f"ours-fused1-head_chunk{head_chunk}", 1, head_chunk)]
    if s.head_size == 64:  # the seed's kernel and model take head size 64 only
        impls.append((SEED_IMPL, 0, 0))
    return [summarise(s, impl, f, hc, grad_cp, launch_us) for impl, f, hc in impls]


def ratios_for(rows):
    """Modelled speed-ups (a step's ms divided by another's: > 1 means the second is faster)."""
    by = {r["impl"]: r for r in rows}
    chunked = next(r for r in rows if r["head_chunk"])
    out = {"micro_bsz": rows[0]["micro_bsz"], "grad_cp": rows[0]["grad_cp"]}
    f0, f1 = by["ours-fused0"]["modelled_step_ms"], by["ours-fused1"]["modelled_step_ms"]
    out["ours_fused0_over_fused1"] = round(f0 / f1, 3)
    out["ours_fused1_over_head_chunk"] = round(f1 / chunked["modelled_step_ms"], 3)
    if SEED_IMPL in by:
        seed = by[SEED_IMPL]["modelled_step_ms"]
        out["seed_over_ours_fused0"] = round(seed / f0, 3)
        out["seed_over_ours_fused1"] = round(seed / f1, 3)
        out["seed_over_ours_head_chunk"] = round(seed / chunked["modelled_step_ms"], 3)
    return out


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        sys.exit(f"gpu_model.py: {message}")


def int_list(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of integers")
    return values


def parse_args(argv):
    p = OneLineParser(description="Roofline model of one training step on an H100 (see the docstring).")
    p.add_argument("--out", default="", help="write the JSON here (default: stdout)")
    p.add_argument("--n-layer", type=int, default=12)
    p.add_argument("--n-embd", type=int, default=768)
    p.add_argument("--head-size", type=int, default=64)
    p.add_argument("--vocab", type=int, default=65536)
    p.add_argument("--ctx-len", type=int, default=512)
    p.add_argument("--micro-bsz", type=int_list, default=[16, 2], help="comma-separated, e.g. 16,2")
    p.add_argument("--grad-cp", type=int_list, default=[1, 0], help="comma-separated 0/1, e.g. 1,0")
    p.add_argument("--head-chunk", type=int, default=512, help="rows per chunk of the head_chunk row")
    p.add_argument("--launch-us", type=float, default=LAUNCH_US, help="overhead charged per kernel")
    a = p.parse_args(argv)
    for name in ("n_layer", "n_embd", "head_size", "vocab", "ctx_len", "head_chunk"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if any(b < 1 for b in a.micro_bsz):
        p.error(f"--micro-bsz values must be >= 1, got {a.micro_bsz}")
    if any(g not in (0, 1) for g in a.grad_cp):
        p.error(f"--grad-cp values must be 0 or 1, got {a.grad_cp}")
    if a.head_size not in (64, 128):
        p.error(f"--head-size must be 64 or 128 (the CUDA WKV-7 kernels' sizes), got {a.head_size}")
    if a.n_embd % a.head_size:
        p.error(f"--n-embd ({a.n_embd}) must be a multiple of --head-size ({a.head_size})")
    if a.ctx_len % CHUNK:
        p.error(f"--ctx-len must be a multiple of {CHUNK} (the CUDA WKV-7 kernels' chunk), got {a.ctx_len}")
    if not a.launch_us >= 0:
        p.error(f"--launch-us must be >= 0, got {a.launch_us}")
    return a


def model(a):
    rows, ratios = [], []
    for bsz in a.micro_bsz:
        for cp in a.grad_cp:
            s = Shape(a.n_layer, a.n_embd, a.head_size, a.vocab, a.ctx_len, bsz)
            group = rows_for(s, cp, a.head_chunk, a.launch_us)
            rows += group
            ratios.append(ratios_for(group))
    return {
        "model": {"device": DEVICE, "hbm_bytes_per_s": HBM_BYTES_PER_S, "bf16_flops_per_s": BF16_FLOPS_PER_S,
                  "launch_us": a.launch_us, "precision": PRECISION,
                  "kernel_time": "max(bytes / hbm_bytes_per_s, flops / bf16_flops_per_s) + launch_us",
                  "not_seen": ["the WKV-7 scan is latency-bound, not roofline-bound",
                               "cache reuse", "kernel overlap and launch overhead hidden behind long kernels or CUDA graphs",
                               "cuBLAS below peak", "allocator, host syncs, data loading"],
                  "script": "scripts/gpu_model.py"},
        "rows": rows,
        "ratios": ratios,
    }


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    text = json.dumps(model(a), indent=1) + "\n"
    if a.out:
        try:
            with open(a.out, "w") as f:
                f.write(text)
        except OSError as e:
            sys.exit(f"gpu_model.py: cannot write --out {a.out}: {e.strerror}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
