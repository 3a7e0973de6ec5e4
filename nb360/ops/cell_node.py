"""cell_node: the fused target node of an NB201 search cell, as a torch custom op (C++ CPU, CUDA).

Node t of a search cell sums, over its k incoming edges e = (s -> t), the five NB201 operations of
the edge scaled by their architecture weights. Given the source nodes `inputs[e] = x_s` and the
conv outputs `convs[2e], convs[2e + 1]` (nor_conv_1x1 and nor_conv_3x3 of the shared relu(x_s);
the convolutions themselves run through ATen, see `nb360.models.fused_cell`), one call computes

    out = sum_e  w[e,skip] x_e + w[e,pool] avgpool3x3(x_e)
               + sum_j w[e,conv_j] (gamma (convs[2e+j] - mean) / sqrt(var + eps) + beta)

with batch statistics (`batch_stats=True`, training) or the given running statistics (eval), and
returns `(out, mean, var)`: the (2k, C) statistics it normalised with (biased batch variance), from
which the caller updates running statistics. `none` contributes exactly zero (AutoDL's `x.mul(0.)`
turns inf into NaN; with finite inputs the two agree). The backward is one
fused op too (`cell_node_backward`): gradients for the source nodes, the conv outputs, the BN affine
parameters and the architecture weights, from a reduction pass and an elementwise pass that
recompute x_hat and the pooled gradient instead of saving them. Design notes: csrc/ops/cell_node.cpp.

Inputs: (N, C, H, W) or (N, C, L) tensors of float32/float64, or float16/bfloat16 storage with float32
arithmetic and statistics (CPU and CUDA). The kernels run channels-last: channels-last operands,
also channel slices of a wider channels-last conv output, are read in place, other layouts copied;
outputs take the first input's layout (`prefers_channels_last`). Results are deterministic and, on
the CPU, independent of the thread count. The supernet runs whole cells through
`nb360.ops.search_cell`, which calls these kernels per target node.

`cell_node_reference` is the plain-PyTorch oracle (AutoDL's ops, term by term) the tests compare against.
No double backward: DARTS' second-order step uses finite differences, which only needs first gradients
(a search that differentiates twice must use the supernet's reference path, `fused=False`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._extension import load_ops

load_ops()

NUM_OPS = 5  # none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3 (nb360.space.nb201.OPS order)
BRANCHES = 2  # BN'd conv branches per edge: nor_conv_1x1, nor_conv_3x3


def cell_node(inputs: Sequence[torch.Tensor], convs: Sequence[torch.Tensor], weights: torch.Tensor,
              bn_weight: torch.Tensor | None = None, bn_bias: torch.Tensor | None = None,
              running_mean: torch.Tensor | None = None, running_var: torch.Tensor | None = None,
              batch_stats: bool = True, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One fused NB201 target node: returns (node, mean (2k, C), var (2k, C)); see the module docstring."""
    return torch.ops.nb360.cell_node.default(list(inputs), list(convs), weights, bn_weight, bn_bias, running_mean,
                                            running_var, batch_stats, eps)


def stats_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of cell_node's statistics: float32 for half/bfloat16 activations, else the activations' dtype."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _avg_pool3(x: torch.Tensor) -> torch.Tensor:
    pool = F.avg_pool2d if x.dim() == 4 else F.avg_pool1d
    return pool(x, 3, stride=1, padding=1, count_include_pad=False)


def cell_node_reference(inputs: Sequence[torch.Tensor], convs: Sequence[torch.Tensor], weights: torch.Tensor,
                        bn_weight: torch.Tensor | None = None, bn_bias: torch.Tensor | None = None,
                        running_mean: torch.Tensor | None = None, running_var: torch.Tensor | None = None,
                        batch_stats: bool = True,
                        eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Plain-PyTorch cell_node, the test oracle: AutoDL's operations term by term, summed edge by edge."""
    out = None
    means, variances = [], []
    for e, x in enumerate(inputs):
        w = weights[e]
        terms = [w[0] * x.mul(0.0), w[1] * x]
        for j in range(BRANCHES):
            b = BRANCHES * e + j
            y = convs[b]
            reduce_dims = [0, *range(2, y.dim())]
            if batch_stats:
                mean, var = y.mean(reduce_dims), y.var(reduce_dims, unbiased=False)
            else:
                mean, var = running_mean[b], running_var[b]
            gamma = None if bn_weight is None else bn_weight[b]
            beta = None if bn_bias is None else bn_bias[b]
            normed = F.batch_norm(y, None if batch_stats else running_mean[b], None if batch_stats else running_var[b],
                                  gamma, beta, training=batch_stats, eps=eps)
            terms.append(w[2 + j] * normed)
            means.append(mean.detach())
            variances.append(var.detach())
        terms.append(w[4] * _avg_pool3(x))
        edge = sum(terms)
        out = edge if out is None else out + edge
    sdt = stats_dtype(inputs[0].dtype)
    return out, torch.stack(means).to(sdt), torch.stack(variances).to(sdt)


# ---------------------------------------------------------------- torch.compile / autograd support

def _contiguous_empty(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    return torch.empty(t.shape, dtype=dtype or t.dtype, device=t.device)


def prefers_channels_last(t: torch.Tensor) -> bool:
    """The layout the ops give their outputs: channels-last when `t` is (and is not also NCHW-contiguous).

    Mirrors prefers_channels_last in csrc/ops/cell_node_kernels.cpp; 3D (N, C, L) tensors count as
    channels-last when their (N, L, C) transpose is contiguous.
    """
    if t.is_contiguous():
        return False
    if t.dim() == 4:
        return t.is_contiguous(memory_format=torch.channels_last)
    return t.dim() == 3 and t.transpose(1, 2).is_contiguous()


def empty_channels_last(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An uninitialised channels-last tensor shaped like t ((N, C, L): strides (L C, 1, C))."""
    dtype = dtype or t.dtype
    if t.dim() == 4:
        return torch.empty(t.shape, dtype=dtype, device=t.device, memory_format=torch.channels_last)
    return torch.empty((t.shape[0], t.shape[2], t.shape[1]), dtype=dtype, device=t.device).transpose(1, 2)


def _empty_like_layout(t: torch.Tensor) -> torch.Tensor:
    return empty_channels_last(t) if prefers_channels_last(t) else _contiguous_empty(t)


@torch.library.register_fake("nb360::cell_node")
def _cell_node_fake(inputs, convs, weights, bn_weight, bn_bias, running_mean, running_var, batch_stats, eps):
    k = len(inputs)
    torch._check(1 <= k <= 4, lambda: "cell_node takes 1 to 4 incoming edges")
    torch._check(len(convs) == BRANCHES * k, lambda: "cell_node needs two conv outputs per incoming edge")
    torch._check(weights.shape == (k, NUM_OPS), lambda: "cell_node: weights must have shape (k, 5)")
    x = inputs[0]
    stats = x.new_empty((BRANCHES * k, x.shape[1]), dtype=stats_dtype(x.dtype))
    return _empty_like_layout(x), stats, torch.empty_like(stats)


@torch.library.register_fake("nb360::cell_node_backward")
def _cell_node_backward_fake(grad, inputs, convs, weights, bn_weight, bn_bias, mean, var, batch_stats, eps):
    x = inputs[0]
    bn_dtype = mean.dtype if bn_weight is None else bn_weight.dtype
    return ([_empty_like_layout(x) for _ in inputs], [_empty_like_layout(x) for _ in convs],
            _contiguous_empty(weights), _contiguous_empty(mean, bn_dtype), _contiguous_empty(mean, bn_dtype))


def _setup_context(ctx, inputs, output) -> None:
    xs, convs, weights, bn_weight, bn_bias, _running_mean, _running_var, batch_stats, eps = inputs
    _out, mean, var = output
    ctx.num_edges = len(xs)
    ctx.batch_stats, ctx.eps, ctx.affine = batch_stats, eps, bn_weight is not None
    ctx.mark_non_differentiable(mean, var)
    # Nothing of the op's own: its inputs (kept alive by the convs and later nodes anyway) and (2k, C) stats.
    ctx.save_for_backward(weights, bn_weight, bn_bias, mean, var, *xs, *convs)


def _backward(ctx, grad_out, _grad_mean, _grad_var):
    weights, bn_weight, bn_bias, mean, var, *rest = ctx.saved_tensors
    xs, convs = rest[:ctx.num_edges], rest[ctx.num_edges:]
    grad_xs, grad_convs, grad_w, grad_gamma, grad_beta = torch.ops.nb360.cell_node_backward.default(
        grad_out, xs, convs, weights, bn_weight, bn_bias, mean, var, ctx.batch_stats, ctx.eps)
    affine = ctx.affine
    return (grad_xs, grad_convs, grad_w, grad_gamma if affine else None, grad_beta if affine else None,
            None, None, None, None)


torch.library.register_autograd("nb360::cell_node", _backward, setup_context=_setup_context)


_KERNELS = {dev: torch._C._dispatch_has_kernel_for_dispatch_key("nb360::cell_node", key)
            for dev, key in (("cpu", "CPU"), ("cuda", "CUDA"))}


def fused_kernels_available(device: torch.device | str = "cpu") -> bool:
    """True when nb360::cell_node has a kernel for this device type (CPU: always; CUDA: when built with CUDA)."""
    return _KERNELS.get(torch.device(device).type, False)
