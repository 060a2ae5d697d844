"""The op library's registration as PyTorch sees it: torch.library.opcheck on the CPU kernels
(schema, autograd key, FakeTensor/Meta kernels, AOTAutograd), the Meta kernels on their own, and
that inference (no grad) runs the plain kernel with the same output as the training forward."""
import pytest
import torch
import torch.nn.functional as F


@pytest.fixture
def ops(ops_library):
    torch.ops.load_library(str(ops_library))
    return torch.ops.rwkv7


def model_like_inputs(dtype, requires_grad=False, B=2, T=20, H=2, N=4, device="cpu"):
    """r, w, k, v, a, b as the model makes them (T = 20: two CPU chunks, the last one partial)."""
    g = torch.Generator().manual_seed(0)
    x = lambda: torch.randn(B, T, H, N, generator=g, dtype=dtype)  # noqa: E731
    r, k, v = x(), x(), x()
    w = -F.softplus(-x()) - 0.5  # the model's soft clamp: w <= -0.5
    kk = F.normalize(x(), dim=-1)
    a, b = -kk, kk * torch.sigmoid(x())
    return tuple(t.to(device).requires_grad_(requires_grad) for t in (r, w, k, v, a, b))


# All four of opcheck's default test_utils run. Which kernels they reach depends on requires_grad:
# with it, wkv7 goes through the Autograd kernel, so test_faketensor checks wkv7_forward's Meta
# kernel and test_aot_dispatch_dynamic traces the backward through wkv7_backward's Meta kernel;
# without it, they check wkv7's own Meta kernel (and test_autograd_registration is a no-op).
@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opcheck_wkv7(ops, dtype, requires_grad):
    torch.library.opcheck(ops.wkv7.default, model_like_inputs(dtype, requires_grad))


# wkv7_forward / wkv7_backward are the non-differentiable halves that wkv7's Autograd kernel calls
# below autograd; their Autograd kernel is autograd's not-implemented fallback (a gradient through
# them is an error), so they are checked with requires_grad=False only.
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_opcheck_wkv7_forward_and_backward(ops, dtype):
    inputs = model_like_inputs(dtype)
    torch.library.opcheck(ops.wkv7_forward.default, inputs)
    y, saved_state, saved_sa = ops.wkv7_forward(*inputs)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    torch.library.opcheck(ops.wkv7_backward.default, inputs + (dy, saved_state, saved_sa))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_meta_kernels_shapes_and_dtypes(ops, dtype):
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


def test_inference_runs_the_plain_kernel_with_the_forward_output(ops):
    inputs = model_like_inputs(torch.float32, requires_grad=True)
    with torch.no_grad():
        y = ops.wkv7(*inputs)
        y_forward, _, _ = ops.wkv7_forward(*inputs)
    assert y.grad_fn is None and not y.requires_grad  # no autograd node, so no saved state kept
    assert y.dtype == torch.float32
    assert torch.equal(y, y_forward)  # bit-exact
    # and the training path (which keeps the state) gives the same bits too
    assert torch.equal(ops.wkv7(*inputs).detach(), y)


def test_a_gradient_through_the_internal_ops_is_an_error_not_a_silent_zero(ops):
    inputs = tuple(t.requires_grad_(True) for t in model_like_inputs(torch.float64))
    y, _, _ = ops.wkv7_forward(*inputs)
    with pytest.raises(RuntimeError, match="not implemented|autograd"):
        y.sum().backward()
