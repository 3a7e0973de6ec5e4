"""nb360::batch_norm_rows against its float64 reference and nn.BatchNorm2d: values, gradients, opcheck, errors.

Data: synthetic tensors (offset from zero, where a one-pass variance loses digits).
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from nb360.ops import batch_norm_rows, batch_norm_rows_reference  # noqa: E402
from nb360.ops.batch_norm_rows import batch_norm_channels_last  # noqa: E402


def _rows(m: int = 300, n: int = 24, dtype=torch.float32, requires_grad: bool = False):
    gen = torch.Generator().manual_seed(m * n)
    x = (torch.randn(m, n, generator=gen, dtype=torch.float64) * 0.5 + 3).to(dtype)
    w = torch.randn(n, generator=gen, dtype=torch.float64).to(dtype)
    b = torch.randn(n, generator=gen, dtype=torch.float64).to(dtype)
    return [t.requires_grad_(requires_grad) for t in (x, w, b)]


@pytest.mark.parametrize("m", [16, 255, 256, 257, 1000])
def test_matches_the_float64_reference_closer_than_atens_channels_last_batch_norm(m: int) -> None:
    x, w, b = _rows(m)
    exact = batch_norm_rows_reference(x.double(), w.double(), b.double())
    got = batch_norm_rows(x, w, b)
    for value, want in zip(got, exact):
        torch.testing.assert_close(value.double(), want, atol=2e-6, rtol=2e-6)
    if m >= 255:  # the reason for the op: two passes beat ATen's one-pass channels-last variance
        aten = torch.nn.functional.batch_norm(x.t().reshape(1, -1, m, 1).contiguous(memory_format=torch.channels_last),
                                              None, None, w, b, True).reshape(-1, m).t()
        assert (got[0].double() - exact[0]).abs().max() < (aten.double() - exact[0]).abs().max()


def test_gradients_match_the_reference() -> None:
    x, w, b = _rows(200, 8, torch.float64, requires_grad=True)
    grad = torch.randn(200, 8, dtype=torch.float64)
    got = torch.autograd.grad(batch_norm_rows(x, w, b)[0], (x, w, b), grad)
    want = torch.autograd.grad(batch_norm_rows_reference(x, w, b)[0], (x, w, b), grad)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, atol=1e-10, rtol=1e-10)


def test_gradcheck() -> None:
    x, w, b = _rows(40, 5, torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: batch_norm_rows(*a)[0], (x, w, b))


def test_opcheck() -> None:
    x, w, b = _rows(64, 6, requires_grad=True)
    torch.library.opcheck(torch.ops.nb360.batch_norm_rows.default, (x, w, b, 1e-5))


def test_results_do_not_depend_on_the_number_of_threads() -> None:
    x, w, b = _rows(3000, 16, requires_grad=True)
    grad = torch.randn(3000, 16)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            y, mean, var = batch_norm_rows(x, w, b)
            results.append((y, mean, var, *torch.autograd.grad(y, (x, w, b), grad)))
    finally:
        torch.set_num_threads(before)
    for one, two in zip(*results):
        assert torch.equal(one, two)


def test_channels_last_wrapper_equals_batchnorm2d_with_its_running_statistics() -> None:
    bn = torch.nn.BatchNorm2d(6, momentum=0.3).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    ours = copy.deepcopy(bn)
    x = (torch.randn(5, 6, 7, 3, dtype=torch.float64) + 2).contiguous(memory_format=torch.channels_last)
    for _ in range(2):
        torch.testing.assert_close(batch_norm_channels_last(x, ours), bn(x), atol=1e-12, rtol=1e-12)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(bn, name), atol=1e-12, rtol=1e-12)
    ours.eval(), bn.eval()
    torch.testing.assert_close(batch_norm_channels_last(x, ours), bn(x))


def test_channels_last_wrapper_leaves_other_cases_to_batchnorm2d() -> None:
    bn = torch.nn.BatchNorm2d(4)
    for x in (torch.randn(3, 4, 5, 5),  # channels-first
              torch.randn(3, 4, 5, 5).contiguous(memory_format=torch.channels_last).bfloat16()):
        ours, ref = copy.deepcopy(bn).to(x.dtype), copy.deepcopy(bn).to(x.dtype)
        torch.testing.assert_close(batch_norm_channels_last(x, ours), ref(x))


@pytest.mark.parametrize("bad, message", [
    (lambda x, w, b: (x[:1], w, b), "more than one value"),
    (lambda x, w, b: (x.reshape(-1), w, b), "matrix"),
    (lambda x, w, b: (x, w[:3], b), "weight must have shape"),
    (lambda x, w, b: (x, w, b.double()), "bias must match"),
])
def test_bad_operands_are_named(bad, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        batch_norm_rows(*bad(*_rows(10, 4)))
