"""nb360::mixed_sum against its plain-PyTorch reference: values, gradients, opcheck, errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from nb360.ops import mixed_sum, mixed_sum_reference  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def sample_inputs(device: str, dtype=torch.float32, k: int = 5, shape=(4, 8, 6, 6), requires_grad=False):
    gen = torch.Generator().manual_seed(k)
    xs = [torch.randn(shape, generator=gen, dtype=dtype).to(device).requires_grad_(requires_grad) for _ in range(k)]
    w = torch.softmax(torch.randn(k, generator=gen, dtype=dtype), 0).to(device).requires_grad_(requires_grad)
    return xs, w


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [1, 5, 8])
def test_matches_reference(device: str, k: int) -> None:
    xs, w = sample_inputs(device, k=k)
    torch.testing.assert_close(mixed_sum(xs, w), mixed_sum_reference(xs, w))


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_inputs(device: str) -> None:
    xs, w = sample_inputs(device, shape=(3, 5, 7))
    xs = [x.transpose(0, 2) for x in xs]
    torch.testing.assert_close(mixed_sum(xs, w), mixed_sum_reference(xs, w))


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_match_reference(device: str) -> None:
    xs, w = sample_inputs(device, requires_grad=True)
    grad = torch.randn_like(xs[0])
    got = torch.autograd.grad(mixed_sum(xs, w), [*xs, w], grad)
    want = torch.autograd.grad(mixed_sum_reference(xs, w), [*xs, w], grad)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck(device: str) -> None:
    xs, w = sample_inputs(device, dtype=torch.float64, k=3, shape=(2, 3, 4), requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: mixed_sum(a[:-1], a[-1]), (*xs, w))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device: str) -> None:
    xs, w = sample_inputs(device, k=4, requires_grad=True)
    torch.library.opcheck(torch.ops.nb360.mixed_sum.default, (xs, w))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_cuda(dtype) -> None:
    xs, w = sample_inputs("cuda", dtype=dtype)
    torch.testing.assert_close(mixed_sum(xs, w), mixed_sum_reference(xs, w))


def test_torch_compile_traces_through_the_op() -> None:
    xs, w = sample_inputs("cpu", k=3, shape=(2, 3))
    compiled = torch.compile(lambda a, b, c, w: mixed_sum([a, b, c], w) * 2, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(*xs, w), 2 * mixed_sum_reference(xs, w))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda xs, w: ([], w), "expected 1 to 8 inputs"),
        (lambda xs, w: (xs * 2, torch.ones(10)), "expected 1 to 8 inputs"),
        (lambda xs, w: (xs, w[:-1]), "weights must have shape"),
        (lambda xs, w: ([xs[0], xs[1][:1]] + xs[2:], w), "input 1 has shape"),
        (lambda xs, w: ([xs[0], xs[1].double()] + xs[2:], w), "input 1 has dtype"),
        (lambda xs, w: (xs, w.double()), "weights have dtype"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, message) -> None:
    xs, w = sample_inputs("cpu")
    with pytest.raises(RuntimeError, match=message):
        torch.ops.nb360.mixed_sum.default(*make(xs, w))
