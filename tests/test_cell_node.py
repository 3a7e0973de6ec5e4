"""nb360::cell_node (the fused NB201 target node) against its plain-PyTorch reference: values,
gradients, gradcheck, opcheck, torch.compile, edge cases and errors. Inputs are SYNTHETIC (randn)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from nb360.ops import cell_node, cell_node_reference  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def sample(k: int = 3, shape=(2, 3, 5, 6), dtype=torch.float32, device: str = "cpu", affine: bool = True,
           requires_grad: bool = False, seed: int = 0):
    """Synthetic operands: k source nodes, 2k conv outputs (mean ≠ 0), softmax weights, BN params, running stats."""
    gen = torch.Generator().manual_seed(seed)
    C = shape[1]

    def rand(*s, scale=1.0, shift=0.0):
        return (torch.randn(s, generator=gen, dtype=dtype) * scale + shift).to(device)

    xs = [rand(*shape) for _ in range(k)]
    ys = [rand(*shape, scale=2.0, shift=0.5) for _ in range(2 * k)]
    w = torch.softmax(torch.randn(k, 5, generator=gen, dtype=dtype), -1).to(device)
    gamma = (torch.rand(2 * k, C, generator=gen, dtype=dtype) + 0.5).to(device) if affine else None
    beta = rand(2 * k, C) if affine else None
    running = (rand(2 * k, C), (torch.rand(2 * k, C, generator=gen, dtype=dtype) + 0.5).to(device))
    if requires_grad:
        for t in (*xs, *ys, w, gamma, beta):
            if t is not None:
                t.requires_grad_(True)
    return xs, ys, w, gamma, beta, running


def call(fn, xs, ys, w, gamma, beta, running, batch_stats: bool):
    rm, rv = (None, None) if batch_stats else running
    return fn(xs, ys, w, gamma, beta, rm, rv, batch_stats, 1e-5)


def grad_targets(xs, ys, w, gamma, beta):
    return [t for t in (*xs, *ys, w, gamma, beta) if t is not None and t.requires_grad]


def check_against_reference(xs, ys, w, gamma, beta, running, batch_stats, **tol) -> None:
    got = call(cell_node, xs, ys, w, gamma, beta, running, batch_stats)
    want = call(cell_node_reference, xs, ys, w, gamma, beta, running, batch_stats)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, **tol)
    if not w.requires_grad:
        return
    grad = torch.randn_like(want[0])
    targets = grad_targets(xs, ys, w, gamma, beta)
    for g, r in zip(torch.autograd.grad(got[0], targets, grad), torch.autograd.grad(want[0], targets, grad)):
        torch.testing.assert_close(g, r, **tol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (3, 4, 11)], ids=["2d", "1d"])
@pytest.mark.parametrize("batch_stats", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [False, True], ids=["plain", "affine"])
def test_matches_reference_with_gradients(device, k, shape, batch_stats, affine) -> None:
    ops = sample(k, shape, device=device, affine=affine, requires_grad=True, seed=k)
    check_against_reference(*ops, batch_stats)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_stats", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(2, 2, 3, 4), (2, 2, 5)], ids=["2d", "1d"])
def test_gradcheck_float64(device, batch_stats, shape) -> None:
    xs, ys, w, gamma, beta, running = sample(2, shape, torch.float64, device, affine=True, requires_grad=True)
    rm, rv = (None, None) if batch_stats else running

    def fn(*t):
        return cell_node(t[0:2], t[2:6], t[6], t[7], t[8], rm, rv, batch_stats, 1e-5)[0]

    assert torch.autograd.gradcheck(fn, (*xs, *ys, w, gamma, beta))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch_stats", [True, False], ids=["train", "eval"])
def test_opcheck(device, batch_stats) -> None:
    xs, ys, w, gamma, beta, running = sample(2, (2, 3, 4, 5), device=device, requires_grad=True)
    rm, rv = (None, None) if batch_stats else running
    torch.library.opcheck(torch.ops.nb360.cell_node.default, (xs, ys, w, gamma, beta, rm, rv, batch_stats, 1e-5))
    torch.library.opcheck(torch.ops.nb360.cell_node.default, (xs, ys, w, None, None, rm, rv, batch_stats, 1e-5))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck_backward_op(device) -> None:
    xs, ys, w, gamma, beta, _ = sample(3, (2, 3, 4, 4), device=device)
    out, mean, var = cell_node(xs, ys, w, gamma, beta)
    torch.library.opcheck(torch.ops.nb360.cell_node_backward.default,
                          (torch.randn_like(out), xs, ys, w, gamma, beta, mean, var, True, 1e-5))


# ---------------------------------------------------------------- edge cases

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (1, 2, 9), (3, 2, 1, 1), (2, 3, 1, 7), (2, 3, 7, 1)],
                         ids=["batch1", "batch1-1d", "1x1", "one-row", "one-column"])
def test_batch_size_one_and_degenerate_spatial_sizes(device, shape) -> None:
    ops = sample(3, shape, device=device, requires_grad=True)
    check_against_reference(*ops, batch_stats=True)
    check_against_reference(*ops, batch_stats=False)


@pytest.mark.parametrize("device", DEVICES)
def test_odd_spatial_sizes(device) -> None:
    check_against_reference(*sample(3, (2, 3, 7, 9), device=device, requires_grad=True), batch_stats=True)


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last_inputs(device) -> None:
    xs, ys, w, gamma, beta, running = sample(2, (2, 3, 5, 6), device=device)
    xs = [x.contiguous(memory_format=torch.channels_last).requires_grad_() for x in xs]
    ys = [y.contiguous(memory_format=torch.channels_last).requires_grad_() for y in ys]
    w.requires_grad_()
    check_against_reference(xs, ys, w, gamma, beta, running, batch_stats=True)


@pytest.mark.parametrize("device", DEVICES)
def test_non_contiguous_inputs_and_channel_slices(device) -> None:
    xs, ys, w, gamma, beta, running = sample(2, (2, 3, 5, 6), device=device)
    # Sources as transposed views; conv outputs as channel slices of one wide tensor (the fused
    # cell's layout, read in place with a batch stride) and as a spatially transposed view.
    xs = [x.transpose(2, 3).contiguous().transpose(2, 3).requires_grad_() for x in xs]
    wide = torch.cat(ys, dim=1).requires_grad_()
    views = list(wide.split(3, dim=1))
    views[-1] = ys[-1].transpose(2, 3).contiguous().transpose(2, 3)
    assert not views[0].is_contiguous() and not xs[0].is_contiguous()
    w.requires_grad_()
    got = cell_node(xs, views, w, gamma, beta)[0]
    want = cell_node_reference(xs, views, w, gamma, beta)[0]
    torch.testing.assert_close(got, want)
    grad = torch.randn_like(want)
    targets = [*xs, wide, w]
    for g, r in zip(torch.autograd.grad(got, targets, grad), torch.autograd.grad(want, targets, grad)):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("zero", ["one-hot", "all-zero", "zero-conv"])
def test_architecture_weights_with_exact_zeros(device, zero) -> None:
    xs, ys, w, gamma, beta, running = sample(3, (2, 3, 5, 5), device=device)
    w = torch.zeros_like(w)
    if zero == "one-hot":
        w[0, 3] = w[1, 4] = w[2, 1] = 1.0
    elif zero == "zero-conv":
        w[:, 1:] = 0.25
        w[:, 2:4] = 0.0
    ops = ([x.requires_grad_() for x in xs], [y.requires_grad_() for y in ys], w.requires_grad_(), gamma, beta,
           running)
    check_against_reference(*ops, batch_stats=True)
    # Gradients w.r.t. zero weights are still the full sums (a zero weight is not a pruned op).
    out = cell_node(*ops[:5])[0]
    grad_w = torch.autograd.grad(out, ops[2], torch.randn_like(out))[0]
    assert (grad_w[:, 1:] != 0).all() and (grad_w[:, 0] == 0).all()


def test_matches_reference_in_float64_tightly() -> None:
    ops = sample(3, (3, 4, 6, 5), torch.float64, requires_grad=True, seed=3)
    check_against_reference(*ops, batch_stats=True, rtol=1e-10, atol=1e-10)


def test_statistics_are_the_batch_mean_and_biased_variance() -> None:
    xs, ys, w, gamma, beta, running = sample(2, (4, 3, 5, 5), torch.float64)
    _, mean, var = cell_node(xs, ys, w, gamma, beta)
    stacked = torch.stack(ys)
    torch.testing.assert_close(mean, stacked.mean((1, 3, 4)))
    torch.testing.assert_close(var, stacked.var((1, 3, 4), unbiased=False))
    _, mean_eval, var_eval = cell_node(xs, ys, w, gamma, beta, *running, batch_stats=False)
    assert torch.equal(mean_eval, running[0]) and torch.equal(var_eval, running[1])


def test_results_do_not_depend_on_the_thread_count() -> None:
    ops = sample(3, (8, 8, 24, 24), requires_grad=True, seed=4)  # big enough to split over 2 threads
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out = cell_node(*ops[:5])[0]
            results.append((out, *torch.autograd.grad(out.square().sum(), grad_targets(*ops[:5]))))
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_torch_compile_traces_forward_and_backward() -> None:
    xs, ys, w, gamma, beta, _ = sample(2, (2, 3, 4, 4), requires_grad=True)

    def node(x0, x1, y0, y1, y2, y3, w, gamma, beta):
        return cell_node([x0, x1], [y0, y1, y2, y3], w, gamma, beta)[0].relu().sum()

    compiled = torch.compile(node, backend="aot_eager", fullgraph=True)
    args = (*xs, *ys, w, gamma, beta)
    got = torch.autograd.grad(compiled(*args), args)
    want = torch.autograd.grad(node(*args), args)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_storage_with_float_arithmetic(device, dtype) -> None:
    xs, ys, w, gamma, beta, _ = sample(3, (4, 8, 8, 8), device=device)
    low_xs = [x.to(dtype).requires_grad_() for x in xs]
    low_ys = [y.to(dtype).requires_grad_() for y in ys]
    w.requires_grad_()
    out, mean, var = cell_node(low_xs, low_ys, w, gamma, beta)
    assert out.dtype == dtype and mean.dtype == var.dtype == torch.float32
    # The same rounded operands in float32: only the output's final rounding may differ.
    want = cell_node([x.float() for x in low_xs], [y.float() for y in low_ys], w, gamma, beta)[0]
    torch.testing.assert_close(out.float(), want, rtol=1e-2, atol=1e-2)
    grad = torch.randn_like(want)
    got_w = torch.autograd.grad(out, [*low_xs, w], grad.to(dtype))
    assert all(g.dtype == dtype for g in got_w[:3]) and got_w[3].dtype == torch.float32
    float_xs = [x.detach().float().requires_grad_() for x in low_xs]
    float_out = cell_node(float_xs, [y.float() for y in low_ys], w, gamma, beta)[0]
    want_w = torch.autograd.grad(float_out, [*float_xs, w], grad.to(dtype).float())
    for g, r in zip(got_w, want_w):
        torch.testing.assert_close(g.float(), r, rtol=2e-2, atol=2e-2)


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    cpu = sample(3, (4, 8, 9, 7), requires_grad=True, seed=9)
    gpu = [[t.detach().cuda().requires_grad_() for t in cpu[0]], [t.detach().cuda().requires_grad_() for t in cpu[1]],
           *[t.detach().cuda().requires_grad_() for t in cpu[2:5]]]
    out_c, out_g = cell_node(*cpu[:5]), cell_node(*gpu)
    for c, g in zip(out_c, out_g):
        torch.testing.assert_close(g.cpu(), c)
    grad = torch.randn_like(out_c[0])
    gc = torch.autograd.grad(out_c[0], grad_targets(*cpu[:5]), grad)
    gg = torch.autograd.grad(out_g[0], grad_targets(*gpu), grad.cuda())
    for c, g in zip(gc, gg):
        torch.testing.assert_close(g.cpu(), c)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda xs, ys, w: ([], [], w[:0]), "expected 1 to 4 inputs"),
        (lambda xs, ys, w: (xs, ys[:-1], w), "expected 6 conv outputs"),
        (lambda xs, ys, w: (xs, ys, w[:2]), "weights must have shape"),
        (lambda xs, ys, w: ([xs[0], xs[1][:1], xs[2]], ys, w), "inputs 1 has shape"),
        (lambda xs, ys, w: (xs, [ys[0].double()] + ys[1:], w), "convs 0 has dtype"),
        (lambda xs, ys, w: ([x[0, 0] for x in xs], [y[0, 0] for y in ys], w), r"\(N, C, L\) or \(N, C, H, W\)"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, message) -> None:
    xs, ys, w, *_ = sample(3)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.nb360.cell_node.default(*make(xs, ys, w), None, None, None, None, True, 1e-5)


def test_bad_statistics_arguments_raise_clear_errors() -> None:
    xs, ys, w, gamma, beta, (rm, rv) = sample(2)
    op = torch.ops.nb360.cell_node.default
    with pytest.raises(RuntimeError, match="needs running_mean and running_var"):
        op(xs, ys, w, None, None, None, None, False, 1e-5)
    with pytest.raises(RuntimeError, match="both bn_weight and bn_bias"):
        op(xs, ys, w, gamma, None, None, None, True, 1e-5)
    with pytest.raises(RuntimeError, match=r"running_mean must have shape \[4, 3\]"):
        op(xs, ys, w, None, None, rm[:1], rv, False, 1e-5)
    one = [x[:1, :, :1, :1] for x in xs]
    with pytest.raises(RuntimeError, match="more than 1 value per channel"):
        op(one, [y[:1, :, :1, :1] for y in ys], w, None, None, None, None, True, 1e-5)
