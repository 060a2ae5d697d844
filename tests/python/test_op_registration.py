"""The op library's registration as PyTorch sees it: the table of ops (ops/op_table.h) against
the kernels registered, torch.library.opcheck on every op and its _forward/_backward pieces
(schema, autograd key, FakeTensor/Meta kernels, AOTAutograd), each differentiable op's values and
gradients against its composite, the Meta kernels against the CPU kernels, and that inference (no
grad) runs the plain kernel with the same output as the training forward. Every check draws its
arguments from op_samples.sample_inputs, the one source of sample inputs per op."""
import ctypes

import pytest
import torch

import op_samples
from op_samples import CUDA_ONLY, FORWARD, REFERENCE, outputs, output_gradients, sample_inputs

DISPATCH_KEYS = ("CPU", "CUDA", "Meta", "Autograd")


@pytest.fixture
def ops(ops_library):
    torch.ops.load_library(str(ops_library))
    return torch.ops.rwkv7


@pytest.fixture
def op_table(ops, ops_library):
    """ops/op_table.h's rows as the library was built: {name: set of dispatch keys}."""
    table = ctypes.CDLL(str(ops_library)).rwkv7_op_table
    table.restype = ctypes.c_char_p
    rows = {}
    for line in table().decode().splitlines():
        name, keys = line.split(" ")
        rows[name] = set(keys.split(","))
    return rows


def op(ops, name):
    return getattr(ops, name).default


# ---- the table ----

def test_every_row_has_cpu_meta_autograd_and_exactly_the_kernels_it_names(op_table):
    assert op_table, "the table is empty"
    for name, keys in op_table.items():
        assert {"Meta", "Autograd"} <= keys, f"row {name}: every op needs a Meta and an Autograd kernel"
        assert "CPU" in keys or name in CUDA_ONLY, f"row {name}: every op but a CUDA-only piece needs a CPU kernel"
        for key in DISPATCH_KEYS:
            registered = torch._C._dispatch_has_kernel_for_dispatch_key(f"rwkv7::{name}", key)
            assert registered == (key in keys), (
                f"rwkv7::{name}: a {key} kernel is {'' if registered else 'not '}registered, "
                f"but its row in ops/op_table.h says {sorted(keys)}")


def test_the_table_holds_every_registered_op(op_table):
    registered = {n.split("::")[1] for n in torch._C._dispatch_get_all_op_names() if n.startswith("rwkv7::")}
    assert registered == set(op_table)


def test_every_row_has_sample_inputs(op_table):
    assert op_samples.row_names() == set(op_table), "tests/python/op_samples.py must cover ops/op_table.h"


# ---- opcheck ----

# All four of opcheck's default test_utils run. Which kernels they reach depends on requires_grad:
# with it, a differentiable op goes through its Autograd kernel, so test_faketensor checks the
# Meta kernel of what that kernel calls (wkv7_forward, or the fused op itself under the recompute
# rule) and test_aot_dispatch_dynamic traces the backward through <op>_backward's Meta kernel;
# without it, they check the op's own Meta kernel (and test_autograd_registration is a no-op).
# The _forward/_backward pieces are not differentiable (autograd's not-implemented fallback), so
# they are checked with requires_grad=False only.
OPCHECK_CASES = [(name, grad) for name in sorted(op_samples.row_names() - set(CUDA_ONLY))
                 for grad in ((True, False) if name in FORWARD else (False,))]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name,requires_grad", OPCHECK_CASES)
def test_opcheck(ops, name, requires_grad, dtype):
    for args in sample_inputs(ops, name, dtype, requires_grad):
        torch.library.opcheck(op(ops, name), args)


@pytest.mark.parametrize("name", CUDA_ONLY)
def test_opcheck_cuda_only_pieces(ops, name):
    if not torch.cuda.is_available():
        pytest.skip("a CUDA-only piece: needs a CUDA device")
    for args in sample_inputs(ops, name, torch.float32, device="cuda"):
        torch.library.opcheck(op(ops, name), args)


# ---- values and gradients ----

@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 2e-4)])
@pytest.mark.parametrize("name", sorted(FORWARD))
def test_values_and_gradients_match_the_composite(ops, name, dtype, tol):
    """The op (and so its Autograd kernel and <op>_backward) against its composite in float64."""
    for args in sample_inputs(ops, name, dtype, requires_grad=True):
        ref_args = tuple(a.detach().double().requires_grad_(True) if isinstance(a, torch.Tensor) and
                         a.is_floating_point() else a for a in args)
        out, ref = outputs(getattr(ops, name)(*args)), outputs(REFERENCE[name](*ref_args))
        assert len(out) == len(ref)
        for o, r in zip(out, ref):
            torch.testing.assert_close(o.double(), r, rtol=tol, atol=tol)
        dout = output_gradients(ref)
        leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
        ref_leaves = [a for a in ref_args if isinstance(a, torch.Tensor) and a.requires_grad]
        grads = torch.autograd.grad(out, leaves, [d.to(o.dtype) for d, o in zip(dout, out)])
        ref_grads = torch.autograd.grad(ref, ref_leaves, dout)
        for i, (g, r) in enumerate(zip(grads, ref_grads)):
            torch.testing.assert_close(g.double(), r, rtol=tol, atol=tol, msg=lambda m: f"gradient {i}: {m}")


# ---- Meta kernels ----

def on_meta(args):
    return tuple(a.to("meta") if isinstance(a, torch.Tensor) else a for a in args)


def described(result):
    return [(t.device.type, tuple(t.shape), t.dtype) for t in outputs(result)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(op_samples.row_names() - set(CUDA_ONLY)))
def test_meta_kernel_gives_the_cpu_kernels_shapes_and_dtypes(ops, name, dtype):
    for args in sample_inputs(ops, name, dtype):
        cpu = getattr(ops, name)(*args)
        assert described(getattr(ops, name)(*on_meta(args))) == [("meta",) + d[1:] for d in described(cpu)]


@pytest.mark.parametrize("name", sorted(FORWARD))
def test_training_on_meta(ops, name):
    """The Autograd kernel on meta tensors: the forward, then <op>_backward, all on Meta."""
    for args in sample_inputs(ops, name, torch.float32, requires_grad=True, device="meta"):
        out = outputs(getattr(ops, name)(*args))
        torch.autograd.backward(out, [torch.empty_like(o) for o in out])
        for a in args:
            if isinstance(a, torch.Tensor) and a.requires_grad:
                assert described(a.grad) == described(a)


def test_meta_kernels_of_the_cuda_only_pieces(ops):
    """wkv7_raw_decay_forward/_backward exist on CUDA only: their Meta kernels give the CUDA
    kernels' saved tensors and take the CUDA kernels' shapes."""
    B, T, H, N = 2, 32, 3, 64
    for dtype in (torch.float32, torch.bfloat16):
        inputs = tuple(torch.empty(B, T, H, N, dtype=dtype, device="meta") for _ in range(6))
        y, saved_state, saved_sa = ops.wkv7_raw_decay_forward(*inputs)
        assert described((y, saved_state, saved_sa)) == [("meta", (B, T, H, N), dtype),
                                                         ("meta", (B, H, T // 16, N, N), torch.float32),
                                                         ("meta", (B, T, H, N), torch.float32)]
        grads = ops.wkv7_raw_decay_backward(*inputs, torch.empty_like(y), saved_state, saved_sa)
        assert described(grads) == [("meta", (B, T, H, N), dtype)] * 6
    odd = tuple(torch.empty(1, 20, 1, 64, device="meta") for _ in range(6))
    with pytest.raises(RuntimeError, match="multiple of 16"):
        ops.wkv7_raw_decay_forward(*odd)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_wkv7_meta_kernels_shapes_and_dtypes(ops, dtype):
    B, T, H, N = 2, 20, 3, 8
    inputs = tuple(torch.empty(B, T, H, N, dtype=dtype, device="meta") for _ in range(6))
    acc = torch.float64 if dtype == torch.float64 else torch.float32

    y = ops.wkv7(*inputs)
    assert (y.device.type, y.shape, y.dtype) == ("meta", (B, T, H, N), dtype)

    y, saved_state, saved_sa = ops.wkv7_forward(*inputs)
    assert (y.device.type, y.shape, y.dtype) == ("meta", (B, T, H, N), dtype)
    assert (saved_state.device.type, saved_state.shape, saved_state.dtype) == ("meta", (B, H, 2, N, N), acc)
    assert (saved_sa.shape, saved_sa.dtype) == ((0,), acc)

    grads = ops.wkv7_backward(*inputs, torch.empty_like(y), saved_state, saved_sa)
    assert len(grads) == 6
    for g in grads:
        assert (g.device.type, g.shape, g.dtype) == ("meta", (B, T, H, N), dtype)

    # training on meta: the Autograd kernel runs wkv7_forward, then wkv7_backward, both on Meta
    leaves = tuple(t.clone().requires_grad_(True) for t in inputs)
    ops.wkv7(*leaves).sum().backward()
    for x in leaves:
        assert (x.grad.device.type, x.grad.shape, x.grad.dtype) == ("meta", (B, T, H, N), dtype)


def test_meta_kernels_name_the_wrong_argument(ops):
    good = lambda: torch.empty(2, 20, 2, 4, device="meta")  # noqa: E731
    r, w, v, a, b = (good() for _ in range(5))
    bad_k = torch.empty(2, 20, 2, 5, device="meta")
    with pytest.raises(RuntimeError, match="'k'"):
        ops.wkv7(r, w, bad_k, v, a, b)
    with pytest.raises(RuntimeError, match="'k'"):
        ops.wkv7_forward(r, w, bad_k, v, a, b)
    _, saved_state, saved_sa = ops.wkv7_forward(r, w, good(), v, a, b)
    with pytest.raises(RuntimeError, match="'dy'"):
        ops.wkv7_backward(r, w, good(), v, a, b, bad_k, saved_state, saved_sa)
    x = torch.empty(2, 5, 8, device="meta")
    with pytest.raises(RuntimeError, match="'mix'"):
        ops.token_shift_mix(x, torch.empty(6, 7, device="meta"))
    with pytest.raises(RuntimeError, match="'dout'"):
        ops.vres_gate_backward(x, x, x, torch.empty(8, device="meta"), torch.empty(2, 5, 7, device="meta"))


# ---- inference and the internal pieces ----

def test_inference_runs_the_plain_kernel_with_the_forward_output(ops):
    inputs = sample_inputs(ops, "wkv7", torch.float32, requires_grad=True)[0]
    with torch.no_grad():
        y = ops.wkv7(*inputs)
        y_forward, _, _ = ops.wkv7_forward(*inputs)
    assert y.grad_fn is None and not y.requires_grad  # no autograd node, so no saved state kept
    assert y.dtype == torch.float32
    assert torch.equal(y, y_forward)  # bit-exact
    # and the training path (which keeps the state) gives the same bits too
    assert torch.equal(ops.wkv7(*inputs).detach(), y)


def test_a_gradient_through_the_internal_ops_is_an_error_not_a_silent_zero(ops):
    inputs = sample_inputs(ops, "wkv7", torch.float64, requires_grad=True)[0]
    y, _, _ = ops.wkv7_forward(*inputs)
    with pytest.raises(RuntimeError, match="not implemented|autograd"):
        y.sum().backward()
