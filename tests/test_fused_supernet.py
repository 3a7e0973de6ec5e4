"""The supernet's fused path (nb360.models.fused_cell + nb360::search_cell) against its reference path:
forward, loss, every parameter gradient, the architecture gradient, running statistics, 20 training
steps, eval mode, compile, edge cases. Small supernets on SYNTHETIC data (randn) keep it fast."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from nb360.errors import InputError  # noqa: E402
from nb360.models import Supernet  # noqa: E402
from nb360.space import nb201  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.fixture(autouse=True)
def _no_tf32():
    """On GPUs, TF32 convolutions would round the two paths' differently shaped convolutions differently.
    (The suite runs on one CPU thread: tests/conftest.py.)"""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
SHAPES = {"point2d": (3, 8, 8), "point1d": (2, 21), "dense2d": (2, 7, 9)}


def pair(topology: str = "point2d", device: str = "cpu", grouping: str = "auto", seed: int = 0, **options):
    """A reference supernet and a deep copy running the fused path (same parameters and buffers)."""
    torch.manual_seed(seed)
    in_channels = SHAPES[topology][0]
    ref = Supernet(5, in_channels, C=4, N=1, topology=topology, fused=False, **options).to(device)
    fused = copy.deepcopy(ref)
    fused.set_fused(True, grouping)
    return ref, fused


def batch(topology: str = "point2d", n: int = 4, device: str = "cpu", seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *SHAPES[topology]), generator=gen)
    return x.to(device)


def forward_backward(net, x, weights=None):
    net.zero_grad(set_to_none=True)
    out = net(x, weights)
    loss = out.square().mean()
    loss.backward()
    grads = {name.removeprefix("_orig_mod."): p.grad.clone() for name, p in net.named_parameters()
             if p.grad is not None}
    return out.detach(), loss.detach(), grads


def assert_same_results(a, b) -> None:
    out_a, loss_a, grads_a = a
    out_b, loss_b, grads_b = b
    torch.testing.assert_close(out_b, out_a)
    torch.testing.assert_close(loss_b, loss_a)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], msg=lambda m, n=name: f"gradient of {n}: {m}")


def assert_same_state(ref, fused) -> None:
    state = fused.state_dict()
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(state[name], value, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("topology", list(SHAPES))
@pytest.mark.parametrize("affine", [False, True], ids=["search", "affine"])
@pytest.mark.parametrize("grouping", ["single", "by_kernel"])
def test_fused_supernet_matches_reference(device, topology, affine, grouping) -> None:
    ref, fused = pair(topology, device, grouping, affine=affine)
    assert all(c.uses_fused(torch.device(device)) for c in fused.search_cells() if c._fused_plan is not None)
    x = batch(topology, device=device)
    assert_same_results(forward_backward(ref, x), forward_backward(fused, x))
    assert_same_state(ref, fused)  # running statistics and num_batches_tracked
    ref.eval()
    fused.eval()
    with torch.no_grad():
        torch.testing.assert_close(fused(x), ref(x))


def train_20_steps(net, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, dict]:
    """DARTS-style alternation (SGD weight step, Adam architecture step) on fixed SYNTHETIC batches."""
    net = copy.deepcopy(net).to(device, dtype)
    gen = torch.Generator().manual_seed(4)
    data = [(torch.randn(16, 3, 8, 8, generator=gen).to(device, dtype),
             torch.randint(0, 5, (16,), generator=gen).to(device)) for _ in range(4)]
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.02, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=3e-3, betas=(0.5, 0.999), weight_decay=1e-3)
    losses = []
    for step in range(20):
        x, y = data[step % 2]
        w_opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        w_opt.step()
        xv, yv = data[2 + step % 2]
        a_opt.zero_grad()
        arch_loss = torch.nn.functional.cross_entropy(net(xv), yv)
        arch_loss.backward()
        a_opt.step()
        losses.append((loss.item(), arch_loss.item()))
    return torch.tensor(losses, dtype=torch.float64), net.state_dict()


@pytest.mark.parametrize("device", DEVICES)
def test_training_20_steps_both_ways_from_the_same_seed(device) -> None:
    ref, fused = pair("point2d", device, seed=3)
    # float64: the two paths must follow the same trajectory to rounding level.
    losses_ref, state_ref = train_20_steps(ref, device, torch.float64)
    losses_fused, state_fused = train_20_steps(fused, device, torch.float64)
    torch.testing.assert_close(losses_fused, losses_ref, rtol=1e-9, atol=1e-9)
    for name, value in state_ref.items():
        torch.testing.assert_close(state_fused[name], value, rtol=1e-8, atol=1e-9, msg=lambda m, n=name: f"{n}: {m}")
    assert not torch.equal(state_ref["alpha"], ref.alpha.to(device, torch.float64))  # α did move
    # float32: 20 steps of SGD with momentum amplify rounding differences (the float32 reference
    # itself can leave the float64 trajectory by ~1e-3 here), so the fused float32 run must be no
    # further from the float64 trajectory than the float32 reference run is (or within 1e-5).
    losses_ref32, _ = train_20_steps(ref, device, torch.float32)
    losses_fused32, _ = train_20_steps(fused, device, torch.float32)
    ref_error = (losses_ref32 - losses_ref).abs().max().item()
    fused_error = (losses_fused32 - losses_ref).abs().max().item()
    assert fused_error <= max(2 * ref_error, 1e-5), (fused_error, ref_error)


@pytest.mark.parametrize("grouping", ["single", "by_kernel"])
def test_architecture_only_backward_matches_reference(grouping: str) -> None:
    """An architecture step asks for α's gradient only; the fused path then skips the conv weight gradients."""
    ref, fused = pair("point2d", grouping=grouping, seed=9)
    x = batch()
    grads = []
    for net in (ref, fused):
        net.zero_grad(set_to_none=True)
        net(x).square().mean().backward(inputs=net.arch_parameters())
        assert all(p.grad is None for p in net.weight_parameters())
        grads.append(net.alpha.grad)
    torch.testing.assert_close(grads[1], grads[0])


@pytest.mark.parametrize("arch", [0, 11, 7777])
def test_fused_supernet_with_one_hot_weights_equals_the_discrete_network(arch: int) -> None:
    _, sn = pair("point2d", seed=5)
    net = sn.discretize(arch)
    weights = torch.zeros(nb201.NUM_EDGES, nb201.NUM_OPS)
    weights[range(nb201.NUM_EDGES), list(nb201.op_ids(arch))] = 1.0
    x = batch()
    for train in (True, False):
        sn.train(train)
        net.train(train)
        torch.testing.assert_close(sn(x, weights), net(x))


@pytest.mark.parametrize("case", ["batch1", "odd-size", "channels-last", "non-contiguous", "zero-weights"])
def test_edge_cases_match_reference(case: str) -> None:
    ref, fused = pair("point2d", seed=6)
    x = batch(n=1 if case == "batch1" else 3)
    weights = None
    if case == "odd-size":
        x = torch.randn(3, 3, 7, 5)
    elif case == "channels-last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif case == "non-contiguous":
        x = x.transpose(2, 3)
        assert not x.is_contiguous()
    elif case == "zero-weights":
        weights = torch.zeros(nb201.NUM_EDGES, nb201.NUM_OPS)
        weights[:, 1] = weights[:, 3] = 0.5
        weights[0] = 0.0  # edge 0 switched off entirely: node 1 is exactly zero
        weights[5, 1:] = 0.25
        weights.requires_grad_()
    results = []
    for net in (ref, fused):
        w = None if weights is None else weights.detach().clone().requires_grad_()
        results.append((*forward_backward(net, x, w), w))
    assert_same_results(results[0][:3], results[1][:3])
    if weights is not None:
        torch.testing.assert_close(results[1][3].grad, results[0][3].grad)
        assert results[1][3].grad[0, 1:].abs().sum() > 0  # zero weights still get gradients


def test_fused_is_the_default_where_the_kernels_exist() -> None:
    net = Supernet(5, 3, C=4, N=1)
    assert all(cell.fused is None and cell.uses_fused(torch.device("cpu")) for cell in net.search_cells())
    assert "fused=auto" in repr(net)
    net.set_fused(False)
    assert not any(cell.uses_fused(torch.device("cpu")) for cell in net.search_cells())


def test_dense_growth_cells_keep_the_reference_path() -> None:
    net = Supernet(1, 2, C=4, N=1, topology="dense2d")
    fusable = [cell._fused_plan is not None for cell in net.search_cells()]
    assert fusable == [True, False, True, False, True]  # the C→2C and 2C→4C cells change channels


def test_bad_fused_options_raise_input_errors() -> None:
    with pytest.raises(InputError, match="fused must be"):
        Supernet(5, 3, C=4, N=1, fused="yes")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="conv_grouping"):
        Supernet(5, 3, C=4, N=1, conv_grouping="pairs")  # type: ignore[arg-type]
    net = Supernet(5, 3, C=4, N=1)
    with pytest.raises(InputError, match="conv_grouping"):
        net.set_fused(True, "pairs")  # type: ignore[arg-type]


def test_torch_compile_over_the_fused_supernet() -> None:
    ref, fused = pair("point2d", seed=7)
    # fullgraph: the whole supernet is one graph (a break per cell once cost 29 graphs and recompiles).
    compiled = torch.compile(fused, backend="aot_eager", fullgraph=True)
    x = batch()
    assert_same_results(forward_backward(ref, x), forward_backward(compiled, x))
    assert_same_state(ref, fused)


def test_fused_supernet_in_float64_is_tight() -> None:
    ref, fused = pair("point2d", seed=8)
    ref.double()
    fused.double()
    x = batch().double()
    out_r, loss_r, grads_r = forward_backward(ref, x)
    out_f, loss_f, grads_f = forward_backward(fused, x)
    torch.testing.assert_close(out_f, out_r, rtol=1e-9, atol=1e-9)
    for name in grads_r:
        torch.testing.assert_close(grads_f[name], grads_r[name], rtol=1e-7, atol=1e-9)


def test_compiled_architecture_step_gives_the_eager_gradients() -> None:
    """A compiled graph's backward runs every gradient its inputs require; the fused op asks the engine at
    run time and skips the conv weight gradients nobody reads (backward(inputs=[alpha])). α's gradient and
    a later weight step must be exactly what eager gives, and asking for a conv kernel too must give it."""
    _, fused = pair("point2d", seed=11)
    compiled = torch.compile(fused, backend="aot_eager", fullgraph=True)
    x = batch()
    eager_grads = {}
    for net, store in ((fused, eager_grads), (compiled, {})):
        fused.zero_grad(set_to_none=True)
        net(x).square().mean().backward(inputs=[fused.alpha])
        assert all(p.grad is None for p in fused.weight_parameters())
        store["alpha"] = fused.alpha.grad.clone()
        kernel = fused.search_cells()[0].edges[3][3].op[1].weight  # an edge's 3x3 kernel
        store["both"] = torch.autograd.grad(net(x).square().mean(), [fused.alpha, kernel])
        if net is compiled:
            torch.testing.assert_close(store["alpha"], eager_grads["alpha"])
            for g, r in zip(store["both"], eager_grads["both"]):
                torch.testing.assert_close(g, r)
                assert g.abs().sum() > 0


def _kernel_calls_in_cell_backward(step) -> int:
    """GEMM and convolution-backward calls made inside nb360::search_cell_backward during step()."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    calls = 0
    for event in prof.events():
        if event.name not in ("aten::mm", "aten::addmm_", "aten::convolution_backward"):
            continue
        parent = event.cpu_parent
        while parent is not None and parent.name != "nb360::search_cell_backward":
            parent = parent.cpu_parent
        calls += parent is not None
    return calls


def test_inductor_compiled_architecture_step_skips_the_conv_weight_gradients() -> None:
    """With inductor (whose layout optimisation prefers channels-last upstream of convolutions), the cells'
    3x3 kernels must reach the compiled op as themselves, not as copies: only then can its backward see that
    an architecture step does not read their gradients. Counted, not timed: the GEMM / conv-backward calls
    inside the op are the same in the compiled supernet as in eager, and fewer than a weight step's. (The
    step also asks for the stem's kernel: a compiled graph's backward returns every gradient its inputs
    require, so the first cell's input gradient is computed there anyway; eager skips it otherwise.)"""
    _, fused = pair("point2d", seed=12)
    compiled = torch.compile(fused, backend="inductor", fullgraph=True)
    x = batch()

    stem = next(p for p in fused.stem.parameters() if p.dim() == 4)

    def arch_step(net):
        return lambda: net(x).square().mean().backward(inputs=[fused.alpha, stem])

    def weight_step(net):
        return lambda: net(x).square().mean().backward()

    for _ in range(2):  # compile, then the steady state
        arch_step(compiled)()
        weight_step(compiled)()
    calls = {name: _kernel_calls_in_cell_backward(step(net)) for name, step, net in (
        ("eager arch", arch_step, fused), ("eager weight", weight_step, fused),
        ("compiled arch", arch_step, compiled), ("compiled weight", weight_step, compiled))}
    assert calls["compiled weight"] == calls["eager weight"] > calls["eager arch"], calls
    assert calls["compiled arch"] == calls["eager arch"], calls


def test_fused_cells_keep_their_3x3_kernels_channels_last_and_the_reference_path_contiguous() -> None:
    ref, fused = pair("point2d", seed=13)
    kernels = [conv.weight for cell in fused.search_cells() for conv in cell._fused_plan.convs
               if conv.weight.shape[-1] == 3]
    assert kernels and all(k.is_contiguous(memory_format=torch.channels_last) for k in kernels)
    assert all(not k.is_contiguous() for k in kernels)
    fused.set_fused(False)
    assert all(k.is_contiguous() for k in kernels)  # same Parameter objects: optimisers keep them
    assert_same_state(ref, fused)


def test_frozen_weights_lets_a_compiled_architecture_step_skip_the_weight_gradients() -> None:
    """`Supernet.frozen_weights()` is how a torch.compile'd architecture step avoids the weight gradients that
    AOTAutograd's backward would otherwise compute: inside it the compiled op's backward makes the eager
    architecture step's GEMM / conv-backward calls, α's gradient equals eager's, no weight gets a gradient,
    requires_grad comes back (also after an exception), and alternating weight and architecture steps
    compiles two graphs once, not a new one per step."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    _, fused = pair("point2d", seed=13)
    torch._dynamo.reset()
    compiled = torch.compile(fused, backend="inductor", fullgraph=True)
    x = batch()

    def arch_step(net):
        def run():
            fused.zero_grad(set_to_none=True)
            with fused.frozen_weights():
                net(x).square().mean().backward()
        return run

    def weight_step():
        fused.zero_grad(set_to_none=True)
        compiled(x).square().mean().backward()

    for _ in range(2):
        arch_step(compiled)()
        weight_step()
    graphs = counters["stats"]["unique_graphs"]
    calls = {name: _kernel_calls_in_cell_backward(arch_step(net)) for name, net in (("eager", fused),
                                                                                  ("compiled", compiled))}
    assert calls["compiled"] == calls["eager"], calls
    assert all(p.grad is None for p in fused.weight_parameters())
    compiled_alpha = fused.alpha.grad.clone()
    arch_step(fused)()
    torch.testing.assert_close(compiled_alpha, fused.alpha.grad)
    for _ in range(2):
        weight_step()
        arch_step(compiled)()
    assert counters["stats"]["unique_graphs"] == graphs  # no recompiles once both graphs exist
    assert all(p.requires_grad for p in fused.parameters())
    with pytest.raises(RuntimeError, match="inside"), fused.frozen_weights():
        assert not any(p.requires_grad for p in fused.weight_parameters())
        raise RuntimeError("inside")
    assert all(p.requires_grad for p in fused.parameters())
