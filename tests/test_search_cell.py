"""nb360::search_cell (the whole NB201 search cell as one op) against its plain-PyTorch reference:
values, statistics, every gradient, gradcheck, opcheck, torch.compile, the architecture-only
backward, layouts, thread counts and errors. Inputs are SYNTHETIC (randn)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from nb360.ops.search_cell import search_cell, search_cell_reference  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def sample(shape=(2, 3, 5, 6), dtype=torch.float32, device="cpu", bias=True, affine=True, batch_stats=True,
           seed=0):
    """Synthetic search_cell arguments: x, (6, 5) softmax weights, 12 conv kernels, optional biases / BN / stats."""
    gen = torch.Generator().manual_seed(seed)
    C, dims = shape[1], len(shape) - 2

    def rand(*s, scale=1.0, shift=0.0):
        return (torch.randn(s, generator=gen, dtype=dtype) * scale + shift).to(device).requires_grad_()

    x = rand(*shape)
    weights = torch.softmax(torch.randn(6, 5, generator=gen, dtype=dtype), -1).to(device).requires_grad_()
    conv_weight = [rand(C, C, *(((1,) if b % 2 == 0 else (3,)) * dims), scale=0.4) for b in range(12)]
    conv_bias = [rand(C, shift=0.3) for _ in range(12)] if bias else []
    bn_weight = [rand(C, scale=0.2, shift=1.0) for _ in range(12)] if affine else []
    bn_bias = [rand(C) for _ in range(12)] if affine else []
    running = ([] if batch_stats else [rand(C).detach() for _ in range(12)],
               [] if batch_stats else [(torch.rand(C, generator=gen, dtype=dtype) + 0.5).to(device)
                                       for _ in range(12)])
    return x, weights, conv_weight, conv_bias, bn_weight, bn_bias, *running, batch_stats, 1e-5


def differentiable(args):
    x, weights, conv_weight, conv_bias, bn_weight, bn_bias = args[:6]
    return [x, weights, *conv_weight, *conv_bias, *bn_weight, *bn_bias]


def detached(args):
    """The arguments without autograd history (tensors and lists of tensors)."""
    return [a.detach() if isinstance(a, torch.Tensor) else [t.detach() for t in a] if isinstance(a, list) else a
            for a in args]


# float32: the gradients of α and of node 0 flow back through three batch-normalised nodes, whose
# backward subtracts nearly equal sums; the float32 reference and the fused op (double accumulators)
# then differ by ~1e-5 relative, above assert_close's float32 default of 1.3e-6.
FLOAT32_TOL = {"rtol": 1e-4, "atol": 5e-5}


def check_against_reference(args, single_conv=False, **tol) -> None:
    if not tol and args[0].dtype == torch.float32:
        tol = FLOAT32_TOL
    got = search_cell(*args, single_conv=single_conv)
    want = search_cell_reference(*args)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, **tol)
    grad = torch.randn_like(want[0])
    targets = differentiable(args)
    for i, (g, r) in enumerate(zip(torch.autograd.grad(got[0], targets, grad),
                                   torch.autograd.grad(want[0], targets, grad))):
        torch.testing.assert_close(g, r, msg=lambda m, i=i: f"gradient {i}: {m}", **tol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (3, 4, 11)], ids=["2d", "1d"])
@pytest.mark.parametrize("batch_stats", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("single_conv", [False, True], ids=["by-kernel", "single"])
@pytest.mark.parametrize("params", ["search", "affine"])
def test_matches_reference_with_gradients(device, shape, batch_stats, single_conv, params) -> None:
    # search: conv biases, no BN affine (the supernet's affine=False); affine: the opposite.
    args = sample(shape, device=device, bias=params == "search", affine=params == "affine", batch_stats=batch_stats)
    check_against_reference(args, single_conv)


def test_matches_reference_in_float64_tightly() -> None:
    check_against_reference(sample((3, 4, 6, 5), torch.float64, seed=3), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("channels", [16, 32, 64])
def test_specialised_channel_counts(channels) -> None:
    """The kernels' compile-time channel widths (vector lanes in registers) against the reference."""
    check_against_reference(sample((2, channels, 4, 3), torch.float64, seed=channels), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("batch_stats", [True, False], ids=["train", "eval"])
def test_gradcheck_float64(batch_stats) -> None:
    args = sample((2, 2, 3, 3), torch.float64, batch_stats=batch_stats)

    def fn(*t):
        return search_cell(t[0], t[1], t[2:14], t[14:26], t[26:38], t[38:50], *args[6:])[0]

    assert torch.autograd.gradcheck(fn, tuple(differentiable(args)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_stats", [True, False], ids=["train", "eval"])
def test_opcheck(device, batch_stats) -> None:
    """Schema, fake (meta) implementation, autograd registration and AOT dispatch: what torch.compile needs."""
    args = sample((2, 3, 4, 5), device=device, batch_stats=batch_stats)
    torch.library.opcheck(torch.ops.nb360.search_cell.default, (*args, False))
    plain = sample((2, 3, 4, 5), device=device, bias=False, affine=False, batch_stats=batch_stats)
    torch.library.opcheck(torch.ops.nb360.search_cell.default, (*plain, True))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_backward_op(device) -> None:
    args = detached(sample((2, 3, 4, 4), device=device))
    x, weights, conv_weight, conv_bias, bn_weight, bn_bias = args[:6]
    out, saved, mean, var = torch.ops.nb360.search_cell.default(*args, False)
    for mask in ([True, True, True], [False, False, False]):
        torch.library.opcheck(torch.ops.nb360.search_cell_backward.default,
                              (torch.randn_like(out), x, saved, weights, conv_weight, conv_bias, bn_weight, bn_bias,
                               mean, var, True, 1e-5, False, mask))


def test_architecture_only_backward_skips_weight_gradients() -> None:
    """backward(inputs=[weights]) computes α's gradient only (no conv weight gradients), equal to the full one."""
    args = sample((2, 4, 5, 5), torch.float64, seed=5)
    x, weights, conv_weight = args[0], args[1], args[2]
    out = search_cell(*args)[0]
    grad = torch.randn_like(out)
    full = torch.autograd.grad(out, [weights, x], grad, retain_graph=True)
    out.backward(grad, inputs=[weights])
    assert all(w.grad is None for w in conv_weight) and x.grad is None
    torch.testing.assert_close(weights.grad, full[0])


def test_output_is_channels_last_and_any_input_layout_works() -> None:
    args = list(sample((2, 3, 5, 6), seed=6))
    cl = args[0].detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    assert search_cell(*args)[0].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(search_cell(cl, *args[1:])[0], search_cell(*args)[0])
    strided = args[0].detach().transpose(2, 3).contiguous().transpose(2, 3).requires_grad_()
    args[0] = strided
    check_against_reference(args)
    out_1d = search_cell(*sample((2, 3, 7)))[0]
    assert out_1d.stride() == (21, 1, 3)  # (N, C, L) channels-last: (L C, 1, C)


def test_unused_output_gives_zero_gradients() -> None:
    args = sample((2, 3, 4, 4), torch.float64)
    _out, mean, _var = search_cell(*args)
    loss = args[0].sum() + 0.0 * mean.sum()  # the cell's node is not used; x reaches the loss directly
    (grad_x,) = torch.autograd.grad(loss, [args[0]])
    torch.testing.assert_close(grad_x, torch.ones_like(grad_x))


def test_results_do_not_depend_on_the_thread_count() -> None:
    """nb360's kernels reduce in a fixed order: node values and every gradient they produce are bitwise
    equal for 1 and 2 threads. The conv weight gradients come from oneDNN / BLAS, whose reductions split
    over threads (as in the reference path), so those are only close."""
    args = sample((8, 16, 12, 12), seed=7)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out = search_cell(*args)[0]
            results.append((out, *torch.autograd.grad(out.square().sum(), differentiable(args))))
    finally:
        torch.set_num_threads(before)
    conv = slice(3, 15)  # out, x, weights, then the 12 conv kernels' gradients
    for i, (a, b) in enumerate(zip(*results)):
        if conv.start <= i < conv.stop:
            torch.testing.assert_close(a, b)
        else:
            assert torch.equal(a, b), i


def test_torch_compile_traces_the_op_in_one_graph() -> None:
    args = sample((2, 3, 4, 4), seed=8)

    def cell(*t):
        return search_cell(t[0], t[1], t[2:14], t[14:26], [], [], [], [], True, 1e-5)[0].relu().sum()

    tensors = [args[0], args[1], *args[2], *args[3]]
    compiled = torch.compile(cell, backend="aot_eager", fullgraph=True)
    for g, r in zip(torch.autograd.grad(compiled(*tensors), tensors), torch.autograd.grad(cell(*tensors), tensors)):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: {**a, 1: a[1][:5]}, r"weights must have shape \[6, 5\]"),
        (lambda a: {**a, 2: a[2][:11]}, "conv_weight must hold 12 kernels"),
        (lambda a: {**a, 2: [a[2][1], *a[2][1:]]}, r"conv_weight\[0\] must have shape"),
        (lambda a: {**a, 3: a[3][:3]}, "conv_bias must hold 12 vectors"),
        (lambda a: {**a, 0: a[0][0, 0]}, r"\(N, C, L\) or \(N, C, H, W\)"),
        (lambda a: {**a, 8: False}, "running_mean must hold 12 vectors"),
    ],
)
def test_bad_arguments_raise_clear_errors(change, message) -> None:
    bad = change(dict(enumerate(detached(sample()))))
    with pytest.raises(RuntimeError, match=message):
        torch.ops.nb360.search_cell.default(*[bad[i] for i in range(10)], False)
