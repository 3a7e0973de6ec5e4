"""nb360's CUDA kernels (csrc/ops/cuda/*_kernel.cu) run on a host emulation of the CUDA execution
model, against the CPU kernels and the plain-PyTorch reference. This checks the device code itself
(indexing, batch strides, reductions, barriers, shuffles, launch limits, dtypes) on machines without
a GPU; the gpu-marked tests check the compiled kernels on real hardware. Inputs are SYNTHETIC."""

from __future__ import annotations

import ctypes

import pytest

torch = pytest.importorskip("torch")

import cuda_emulator  # noqa: E402
from cuda_emulator import ASCENDING, DESCENDING, EmulatedKernels  # noqa: E402
from nb360.ops import cell_node, cell_node_reference, mixed_sum  # noqa: E402
from test_cell_node import sample  # noqa: E402

pytestmark = pytest.mark.skipif(cuda_emulator.compiler() is None, reason="no host C++ compiler")


@pytest.fixture(scope="module")
def emulated(tmp_path_factory: pytest.TempPathFactory) -> EmulatedKernels:
    return EmulatedKernels(cuda_emulator.build(tmp_path_factory.mktemp("cuda_emulation")))


def as_merged_conv_slices(ys: list[torch.Tensor]) -> list[torch.Tensor]:
    """The conv outputs as channel slices of one wide channels-last tensor, as search_cell passes them to the
    node kernels (read in place: batch stride ≠ C·H·W, pixel stride = the wide tensor's channel count)."""
    merged = cuda_emulator.as_channels_last_view(torch.cat(ys, dim=1))
    C = ys[0].shape[1]
    slices = [merged[:, b * C:(b + 1) * C] for b in range(len(ys))]
    assert all(cuda_emulator.is_channels_last_view(t) for t in slices)
    return slices


def forward_and_backward(run, xs, ys, w, gamma, beta, running, batch_stats, grad):
    """(out, mean, var, grad_x..., grad_y..., grad_w, grad_gamma, grad_beta) from one implementation."""
    rm, rv = running
    out, mean, var = run.forward(xs, ys, w, gamma, beta, rm, rv, batch_stats, 1e-5)
    gx, gy, gw, gg, gb = run.backward(grad, xs, ys, w, gamma, beta, mean, var, batch_stats, 1e-5)
    return [out, mean, var, *gx, *gy, gw, *([gg, gb] if gamma is not None else [])]


class CpuKernels:
    """The CPU kernels through their torch ops (the same schema as the CUDA glue)."""

    @staticmethod
    def forward(*args):
        """nb360::cell_node on the CPU kernel."""
        return torch.ops.nb360.cell_node(*args)

    @staticmethod
    def backward(*args):
        """nb360::cell_node_backward on the CPU kernel."""
        return torch.ops.nb360.cell_node_backward(*args)


class Emulated:
    """The CUDA kernels on the emulator, with one fiber schedule."""

    def __init__(self, kernels: EmulatedKernels, order: int = ASCENDING):
        self.k, self.order = kernels, order

    def forward(self, *args):
        """cell_node through the CUDA forward launcher."""
        return self.k.cell_node(*args, order=self.order)

    def backward(self, *args):
        """cell_node_backward through the CUDA backward launcher."""
        return self.k.cell_node_backward(*args, order=self.order)


CASES = [
    # (k, shape): 2D, 1D (H = 1), batch 1, odd sizes, every edge count.
    (1, (2, 3, 5, 6)),
    (2, (3, 4, 11)),
    (3, (1, 2, 7, 5)),
    (4, (2, 3, 3, 9)),
]


@pytest.mark.parametrize("k,shape", CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("batch_stats", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_matches_cpu_kernels_in_float64(emulated, k, shape, batch_stats, affine) -> None:
    xs, ys, w, gamma, beta, running = sample(k, shape, torch.float64, affine=affine, seed=k)
    ys = as_merged_conv_slices(ys)
    grad = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = forward_and_backward(Emulated(emulated), xs, ys, w, gamma, beta, running, batch_stats, grad)
    want = forward_and_backward(CpuKernels, xs, ys, w, gamma, beta, running, batch_stats, grad)
    assert len(got) == len(want)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("batch_stats", [True, False], ids=["train", "eval"])
def test_float32_matches_the_reference_with_gradients(emulated, batch_stats) -> None:
    xs, ys, w, gamma, beta, running = sample(3, (2, 4, 6, 7), torch.float32, affine=True, requires_grad=True)
    rm, rv = (None, None) if batch_stats else running
    want_out, want_mean, want_var = cell_node_reference(xs, ys, w, gamma, beta, rm, rv, batch_stats, 1e-5)
    grad = torch.randn_like(want_out)
    targets = [*xs, *ys, w, gamma, beta]
    want_grads = torch.autograd.grad(want_out, targets, grad)
    with torch.no_grad():
        out, mean, var = emulated.cell_node(xs, ys, w, gamma, beta, *running, batch_stats, 1e-5)
        gx, gy, gw, gg, gb = emulated.cell_node_backward(grad, xs, ys, w, gamma, beta, mean, var, batch_stats, 1e-5)
    torch.testing.assert_close(out, want_out.detach())
    if batch_stats:
        torch.testing.assert_close(mean, want_mean.detach())
        torch.testing.assert_close(var, want_var.detach())
    for g, r in zip([*gx, *gy, gw, gg, gb], want_grads):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_half_precision_matches_float32_within_rounding(emulated, dtype) -> None:
    xs, ys, w, gamma, beta, running = sample(2, (2, 3, 5, 5), torch.float32, affine=True, seed=3)
    low = [t.to(dtype) for t in xs], [t.to(dtype) for t in ys]
    # The float32 answer for the same (rounded) activations: the kernels accumulate in float32.
    up = [t.float() for t in low[0]], [t.float() for t in low[1]]
    grad = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(2))
    out, mean, var = emulated.cell_node(*low, w, gamma, beta, None, None, True, 1e-5)
    want_out, want_mean, want_var = torch.ops.nb360.cell_node(*up, w, gamma, beta, None, None, True, 1e-5)
    assert out.dtype == dtype and mean.dtype == torch.float32
    torch.testing.assert_close(mean, want_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(var, want_var, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.float(), want_out, rtol=1e-2, atol=1e-2)
    got = emulated.cell_node_backward(grad.to(dtype), *low, w, gamma, beta, mean, var, True, 1e-5)
    want = torch.ops.nb360.cell_node_backward(grad.to(dtype).float(), *up, w, gamma, beta, want_mean, want_var,
                                              True, 1e-5)
    for g, r in zip([*got[0], *got[1]], [*want[0], *want[1]]):
        assert g.dtype == dtype
        torch.testing.assert_close(g.float(), r, rtol=2e-2, atol=2e-2)
    for g, r in zip(got[2:], want[2:]):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


def test_multi_chunk_reductions_and_several_finalize_blocks(emulated) -> None:
    """Shapes past one reduction chunk (N·H·W > 1024) and past one finalize block (C > 128)."""
    for k, shape in [(1, (4, 2, 40, 40)), (1, (1, 130, 2, 3))]:
        xs, ys, w, gamma, beta, running = sample(k, shape, torch.float64, affine=True, seed=5)
        grad = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
        got = forward_and_backward(Emulated(emulated), xs, ys, w, gamma, beta, running, True, grad)
        want = forward_and_backward(CpuKernels, xs, ys, w, gamma, beta, running, True, grad)
        for g, r in zip(got, want):
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


def test_exact_zero_weights_and_large_mean(emulated) -> None:
    """Zero architecture weights give exact zeros; a channel mean far above its spread keeps its variance."""
    xs, ys, w, gamma, beta, running = sample(2, (2, 3, 4, 4), torch.float32, affine=True, seed=6)
    w = w.clone()
    w[0] = 0.0
    w[1, 2:4] = 0.0
    ys = [y + 1000.0 for y in ys]
    out, mean, var = emulated.cell_node(xs, ys, w, gamma, beta, None, None, True, 1e-5)
    want = cell_node_reference(xs, ys, w, gamma, beta, None, None, True, 1e-5)
    torch.testing.assert_close(out, want[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(var, want[2], rtol=1e-4, atol=1e-4)
    gx, gy, gw, gg, gb = emulated.cell_node_backward(torch.ones_like(out), xs, ys, w, gamma, beta, mean, var, True,
                                                     1e-5)
    assert torch.count_nonzero(gx[0]) == 0 and torch.count_nonzero(gy[0]) == 0 and torch.count_nonzero(gy[1]) == 0
    assert torch.count_nonzero(gg[0:2]) == 0 and torch.count_nonzero(gy[2]) == 0


def test_results_do_not_depend_on_thread_order(emulated) -> None:
    """Ascending and descending fiber schedules give bit-identical results: no reduction depends on a race."""
    xs, ys, w, gamma, beta, running = sample(3, (3, 5, 9, 7), torch.float32, affine=True, seed=7)
    ys = as_merged_conv_slices(ys)
    grad = torch.randn(3, 5, 9, 7, generator=torch.Generator().manual_seed(8))
    up = forward_and_backward(Emulated(emulated, ASCENDING), xs, ys, w, gamma, beta, running, True, grad)
    down = forward_and_backward(Emulated(emulated, DESCENDING), xs, ys, w, gamma, beta, running, True, grad)
    for a, b in zip(up, down):
        assert torch.equal(a, b)
    x = [torch.randn(5000, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    g = torch.randn(5000)
    wm = torch.tensor([0.2, 0.5, 0.3])
    assert torch.equal(emulated.mixed_sum_backward(g, x, wm, ASCENDING), emulated.mixed_sum_backward(g, x, wm, DESCENDING))


def test_statistics_rows_beyond_the_grid_are_refused(emulated) -> None:
    """2k·C > 65535 rows of batch statistics: the launcher refuses (the glue turns it into a clear error)."""
    k, C = 4, 8192 + 1
    xs = [torch.zeros(1, C, 1, 2) for _ in range(k)]
    ys = [torch.zeros(1, C, 1, 2) for _ in range(2 * k)]
    w = torch.full((k, 5), 0.2)
    with pytest.raises(RuntimeError, match="cudaError_t 1"):
        emulated.cell_node(xs, ys, w, None, None, None, None, True, 1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_mixed_sum_matches_the_cpu_op(emulated, dtype) -> None:
    gen = torch.Generator().manual_seed(9)
    xs = [torch.randn(3, 4, 5, 7, generator=gen, dtype=dtype) for _ in range(5)]
    w = torch.softmax(torch.randn(5, generator=gen, dtype=dtype), 0)
    w[2] = 0.0
    grad = torch.randn(3, 4, 5, 7, generator=gen, dtype=dtype)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {}
    torch.testing.assert_close(emulated.mixed_sum(xs, w), mixed_sum(xs, w), **tol)
    torch.testing.assert_close(emulated.mixed_sum_backward(grad, xs, w),
                               torch.ops.nb360.mixed_sum_backward(grad, xs, w), **tol)
    big = [torch.randn(300_000, generator=gen, dtype=dtype) for _ in range(2)]  # > 1024 blocks: grid-stride loops
    wb = torch.tensor([0.25, 0.75], dtype=dtype)
    gb = torch.randn(300_000, generator=gen, dtype=dtype)
    torch.testing.assert_close(emulated.mixed_sum(big, wb), mixed_sum(big, wb), **tol)
    torch.testing.assert_close(emulated.mixed_sum_backward(gb, big, wb),
                               torch.ops.nb360.mixed_sum_backward(gb, big, wb), **tol)


def internal_operands(k: int, shape, layout: str, seed: int = 0):
    """Operands of the internal node ops in float64: CL slices of wide conv outputs, or NCHW tensors."""
    xs, ys, w, gamma, beta, running = sample(k, shape, torch.float64, affine=True, seed=seed)
    C = shape[1]
    bias = torch.randn(2 * k, C, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    if layout == "channels-last":
        xs = [cuda_emulator.as_channels_last_view(x) for x in xs]
        ys = as_merged_conv_slices(ys)
        new = cuda_emulator.empty_channels_last
    else:  # NCHW planes: the CUDA kernels read any evenly spaced layout in place
        new = torch.empty_like
    return xs, ys, w, gamma, beta, running, bias, new


@pytest.mark.parametrize("layout", ["channels-last", "nchw"])
@pytest.mark.parametrize("batch_stats", [True, False], ids=["train", "eval"])
def test_internal_node_ops_match_the_cpu_kernels(emulated, layout, batch_stats) -> None:
    """What search_cell asks of the node kernels -- conv biases added on read, relu(node) written beside the
    node, input gradients written, accumulated or skipped, conv-bias gradients -- on the CUDA device code."""
    k, shape = 3, (2, 16, 5, 6)
    xs, ys, w, gamma, beta, (rm, rv), bias, new = internal_operands(k, shape, layout, seed=12)
    cl_xs = [cuda_emulator.as_channels_last_view(x) for x in xs]
    cl_ys = [cuda_emulator.as_channels_last_view(y) for y in ys]
    stats = (None, None) if batch_stats else (rm, rv)
    out, relu = new(xs[0]), new(xs[0])
    got = emulated.cell_node_forward_into(xs, ys, bias, w, gamma, beta, *stats, batch_stats, 1e-5, out, relu)
    want_out, want_relu = (cuda_emulator.empty_channels_last(xs[0]) for _ in range(2))
    want = torch.ops.nb360._cell_node_forward(cl_xs, cl_ys, bias, w, gamma, beta, *stats, batch_stats, 1e-5,
                                              want_out, want_relu)
    for g, r in zip((*got, out, relu), (*want, want_out, want_relu)):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)
    grad = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(13))
    modes = [1, 2, 0]  # write, accumulate, skip
    start = [torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(20 + e)) for e in range(k)]
    gx, gx_want = [new(xs[0]) for _ in range(k)], [cuda_emulator.empty_channels_last(xs[0]) for _ in range(k)]
    for a, b, s0 in zip(gx, gx_want, start):
        a.copy_(s0)
        b.copy_(s0)
    gy, gy_want = [new(xs[0]) for _ in ys], [cuda_emulator.empty_channels_last(xs[0]) for _ in ys]
    gy[2] = gy_want[2] = torch.empty(0, dtype=torch.float64)  # skipped: search_cell forms it from the coefficients
    small = emulated.cell_node_backward_into(grad.clone(), xs, ys, bias, w, gamma, beta, got[0], got[1], batch_stats,
                                             1e-5, gx, modes, gy)
    small_want = torch.ops.nb360._cell_node_backward(cuda_emulator.as_channels_last_view(grad), cl_xs, cl_ys, bias, w,
                                                     gamma, beta, want[0], want[1], batch_stats, 1e-5, gx_want,
                                                     modes, gy_want)
    for g, r in zip((*small, *gx, *gy), (*small_want, *gx_want, *gy_want)):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)
    # The coefficients give the skipped branch's gradient: A g + C1 y + C0.
    coef = small[4][:, 2].reshape(3, 1, -1, 1, 1)
    formed = coef[0] * grad + coef[1] * ys[2] + coef[2]
    written = [cuda_emulator.empty_channels_last(xs[0]) for _ in ys]
    torch.ops.nb360._cell_node_backward(cuda_emulator.as_channels_last_view(grad), cl_xs, cl_ys, bias, w, gamma, beta,
                                        want[0], want[1], batch_stats, 1e-5,
                                        [cuda_emulator.empty_channels_last(xs[0]) for _ in range(k)], [1] * k, written)
    torch.testing.assert_close(formed, written[2], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gx[2], start[2], rtol=0, atol=0)  # skipped: untouched


def test_channel_stats_and_relu_backward_add_match_the_cpu_kernels(emulated) -> None:
    wide = cuda_emulator.as_channels_last_view(torch.randn(3, 48, 7, 5, dtype=torch.float64) * 3 + 100)
    bias = torch.randn(48, dtype=torch.float64)
    for y in (wide, wide[:, 16:32], wide.contiguous()):
        b = bias[: y.shape[1]]
        for g, r in zip(emulated.channel_stats(y, b), torch.ops.nb360._channel_stats(cuda_emulator.as_channels_last_view(y), b)):
            torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)
    dst = torch.randn(2, 5, 4, 3, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    src, add = torch.randn_like(dst), torch.randn_like(dst)
    want = dst.clone()
    torch.ops.nb360._relu_backward_add(want, src, add)
    emulated.relu_backward_add(dst, src, add)
    assert torch.equal(dst, want)


# ------------------------------------------------------------ planted bugs are caught

# Each replaces one line of a kernel with a plausible mistake.
MUTATIONS = {
    "pool-divisor-ignores-borders": ("cell_node_kernel.cu", "acc += pooled / static_cast<A>((h1 - h0 + 1) * (x1 - x0 + 1));",
                                     "acc += pooled / static_cast<A>(9);"),
    "stats-ignore-batch-stride": ("cell_node_kernel.cu", "static_cast<i64>(n) * ys.sN",
                                  "static_cast<i64>(n) * ops.C * HW"),
    "block-sum-without-barrier": ("cell_node_kernel.cu", "  __syncthreads();\n  if (warp == 0) {", "  if (warp == 0) {"),
    "first-chunk-only": ("cell_node_kernel.cu", "for (i64 j = 0; j < chunks; ++j)\n    for (int a = 0;",
                         "for (i64 j = 0; j < 1; ++j)\n    for (int a = 0;"),
    "mixed-sum-tree-without-barrier": ("mixed_sum_kernel.cu", "    }\n    __syncthreads();\n  }", "    }\n  }"),
}


def agrees_with_cpu(kernels: EmulatedKernels) -> bool:
    """A compact version of the checks above: True when every emulated result matches the CPU kernels."""
    try:
        for k, shape in [(2, (4, 2, 40, 40)), (3, (2, 3, 5, 6))]:
            xs, ys, w, gamma, beta, running = sample(k, shape, torch.float64, affine=True, seed=5)
            ys = as_merged_conv_slices(ys)
            grad = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
            want = forward_and_backward(CpuKernels, xs, ys, w, gamma, beta, running, True, grad)
            for order in (ASCENDING, DESCENDING):
                got = forward_and_backward(Emulated(kernels, order), xs, ys, w, gamma, beta, running, True, grad)
                for g, r in zip(got, want):
                    torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)
        xs = [torch.randn(300_000, dtype=torch.float64, generator=torch.Generator().manual_seed(i)) for i in range(3)]
        w = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
        g = torch.randn(300_000, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
        torch.testing.assert_close(kernels.mixed_sum_backward(g, xs, w), torch.ops.nb360.mixed_sum_backward(g, xs, w),
                                   rtol=1e-12, atol=1e-12)
    except (AssertionError, RuntimeError):
        return False
    return True


def test_the_compact_check_passes_on_the_real_kernels(emulated) -> None:
    assert agrees_with_cpu(emulated)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MUTATIONS))
def test_a_planted_kernel_bug_is_caught(name, tmp_path) -> None:
    assert not agrees_with_cpu(EmulatedKernels(cuda_emulator.build(tmp_path, MUTATIONS[name]))), name


# ------------------------------------------------------------ the emulator itself can fail


def selftest(emulated, order: int, mode: int, threads: int = 256, grid_y: int = 1, scale: float = 1.0
             ) -> tuple[int, float]:
    """Sum 0..999 (times scale) with the self-test kernel in one mode: (return code, result)."""
    data = torch.arange(1000, dtype=torch.float32) * scale
    out = torch.zeros(1)
    fn = emulated.lib.emu_selftest_block_total
    code = fn(ctypes.c_int(order), ctypes.c_int(mode), ctypes.c_void_p(data.data_ptr()),
              ctypes.c_void_p(out.data_ptr()), ctypes.c_int(1000), ctypes.c_int(threads), ctypes.c_uint(grid_y))
    return code, float(out)


def test_emulator_runs_a_correct_reduction_in_any_order(emulated) -> None:
    assert selftest(emulated, ASCENDING, 0) == (0, float(sum(range(1000))))
    assert selftest(emulated, DESCENDING, 0) == (0, float(sum(range(1000))))


def test_emulator_exposes_a_missing_barrier(emulated) -> None:
    # Fresh data: __shared__ keeps its values between launches, and the last run's partial sums
    # would otherwise stand in for the ones the racing threads have not written yet.
    selftest(emulated, ASCENDING, 0)
    results = [selftest(emulated, order, 1, scale=2.0) for order in (ASCENDING, DESCENDING)]
    assert all(code == 0 for code, _ in results)
    assert {total for _, total in results} != {2.0 * sum(range(1000))}, "a race without __syncthreads went unseen"


def test_emulator_reports_a_barrier_in_divergent_code(emulated) -> None:
    assert selftest(emulated, ASCENDING, 2)[0] == -1
    assert "deadlock" in emulated.lib.emu_fault().decode()


@pytest.mark.parametrize("order", [ASCENDING, DESCENDING], ids=["ascending", "descending"])
def test_emulator_reports_a_shuffle_after_lanes_exited(emulated, order) -> None:
    # Ascending: lanes 0-15 wait in the shuffle when 16-31 exit; descending: they exited before it.
    assert selftest(emulated, order, 3)[0] == -1
    assert "exited" in emulated.lib.emu_fault().decode() and "full-mask shuffle" in emulated.lib.emu_fault().decode()


def test_emulator_refuses_launches_past_the_hardware_limits(emulated) -> None:
    assert selftest(emulated, ASCENDING, 0, threads=2048)[0] == 9  # cudaErrorInvalidConfiguration
    assert selftest(emulated, ASCENDING, 0, grid_y=65536)[0] == 9


def test_every_launch_in_the_kernel_sources_is_rewritten() -> None:
    for source in cuda_emulator.KERNEL_SOURCES:
        text = source.read_text()
        rewritten, count = cuda_emulator.rewrite_launches(text)
        assert count == text.count("<<<") > 0, source.name
        assert "<<<" not in rewritten and ">>>" not in rewritten


# ------------------------------------------------------------ the fused supernet on the CUDA device code


@pytest.fixture
def cuda_code_on_cpu(emulated):
    """While active, the nb360 ops' CPU calls run the emulated CUDA kernels (counted launches prove it)."""
    before = emulated.launches()
    lib = cuda_emulator.override_cpu_kernels(emulated)
    yield
    lib._destroy()
    assert emulated.launches() > before, "the override never reached the emulated kernels"


@pytest.mark.parametrize("topology,grouping", [("point2d", "single"), ("point1d", "single"), ("dense2d", "by_kernel")])
def test_fused_supernet_on_the_cuda_kernels_matches_the_reference(cuda_code_on_cpu, topology, grouping) -> None:
    from test_fused_supernet import assert_same_results, assert_same_state, batch, forward_backward, pair

    ref, fused = pair(topology, "cpu", grouping, affine=True)
    x = batch(topology)
    assert_same_results(forward_backward(ref, x), forward_backward(fused, x))
    assert_same_state(ref, fused)


@pytest.mark.slow
def test_training_20_steps_on_the_cuda_kernels(cuda_code_on_cpu) -> None:
    """The gpu test's 20 DARTS steps in float64, with every fused node and mixed edge on the CUDA device code."""
    from test_fused_supernet import pair, train_20_steps

    ref, fused = pair("point2d", "cpu", "single", seed=3)
    losses_fused, state_fused = train_20_steps(fused, "cpu", torch.float64)
    losses_ref, state_ref = train_20_steps(ref, "cpu", torch.float64)
    torch.testing.assert_close(losses_fused, losses_ref, rtol=1e-9, atol=1e-9)
    for name, value in state_ref.items():
        torch.testing.assert_close(state_fused[name], value, rtol=1e-7, atol=1e-9, msg=lambda m, n=name: f"{n}: {m}")
