"""The fused forward of an NB201 search cell: shared ReLU + one convolution per source node, one
`nb360::cell_node` call per target node.

For each source node s (as soon as it exists): relu(x_s) once for all conv ops on all edges leaving
s, and their 1×1 and 3×3 convolutions as ONE ATen convolution (oneDNN / cuDNN) whose output
channels are [1×1 of every outgoing edge | 3×3 of every outgoing edge], the 1×1 kernels zero-padded
to 3×3 (centre tap only): `conv_grouping="single"`, the default on GPUs. On the CPU oneDNN computes
the zero taps (about 1.8× the conv FLOPs), so the default there is `"by_kernel"`: one 3×3
convolution for all outgoing edges' 3×3 ops and one 1×1 convolution for all their 1×1 ops (see
benchmarks/RESULTS.md). relu(x_s) is recomputed in backward rather than saved (x_s is saved anyway
for the skip and pool terms). For each target node t: one `cell_node` call that batch-normalises
every conv branch, weights every operation by its architecture weight, adds skip and the 3×3
average pool, and sums the incoming edges.

The parameters stay in the SearchCell's own modules (same state dict as the reference path, which
stays available for checking): conv weights are concatenated per call (cheap, differentiable) and
running statistics are updated here from the statistics `cell_node` returns, exactly as BatchNorm
does (momentum or cumulative average, unbiased variance, `num_batches_tracked`).

Cells whose node-0 edges change the channel count (the growth cells of dense networks) are not
fusable — skip_connect there is a 1×1 conv + BN without ReLU, and the pool has its own ReLUConvBN —
and keep the reference path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..ops.cell_node import cell_node
from ..ops.cells import Identity, Pooling, ReLUConvBN
from ..space import nb201

if TYPE_CHECKING:
    from .supernet import SearchCell

ConvGrouping = Literal["auto", "single", "by_kernel"]
CONV_GROUPINGS = ("auto", "single", "by_kernel")

_SKIP, _CONV1, _CONV3, _POOL = (nb201.OPS.index(op) for op in ("skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                                               "avg_pool_3x3"))


@dataclass(frozen=True)
class _SourcePlan:
    source: int
    edges: tuple[int, ...]        # outgoing edges, in EDGES order
    conv1: tuple[nn.Module, ...]  # their nor_conv_1x1 convolutions
    conv3: tuple[nn.Module, ...]  # their nor_conv_3x3 convolutions


@dataclass(frozen=True)
class _TargetPlan:
    target: int
    edges: tuple[int, ...]                 # incoming edges: a contiguous range of EDGES
    sources: tuple[int, ...]
    bns: tuple[nn.BatchNorm2d | nn.BatchNorm1d, ...]  # [e0 1×1, e0 3×3, e1 1×1, …]


@dataclass(frozen=True)
class CellPlan:
    """Which modules of a SearchCell feed which fused call (built once per cell)."""

    sources: tuple[_SourcePlan, ...]
    targets: tuple[_TargetPlan, ...]


def _relu_conv_bn(op: nn.Module) -> tuple[nn.Module, nn.Module]:
    seq = op.op  # ReLUConvBN: Sequential(ReLU, Conv, BN)
    return seq[1], seq[2]


def fusable(cell: SearchCell) -> bool:
    """True when every edge is stride 1 and keeps the channel count (skip = identity, pool = plain pool)."""
    for edge in cell.edges:
        skip, conv1, conv3, pool = edge[_SKIP], edge[_CONV1], edge[_CONV3], edge[_POOL]
        if not (isinstance(skip, Identity) and isinstance(pool, Pooling) and pool.preprocess is None
                and isinstance(conv1, ReLUConvBN) and isinstance(conv3, ReLUConvBN)):
            return False
        for op in (conv1, conv3):
            conv, bn = _relu_conv_bn(op)
            if conv.stride[0] != 1 or conv.in_channels != conv.out_channels or conv.dilation[0] != 1:
                return False
        if pool.op.stride not in (1, (1, 1), (1,)):
            return False
    return True


def build_plan(cell: SearchCell) -> CellPlan:
    """The per-source and per-target module lists of a fusable SearchCell."""
    sources = []
    for s in range(nb201.NUM_NODES - 1):
        out_edges = tuple(e for e, (src, _t) in enumerate(nb201.EDGES) if src == s)
        sources.append(_SourcePlan(
            s, out_edges,
            tuple(_relu_conv_bn(cell.edges[e][_CONV1])[0] for e in out_edges),
            tuple(_relu_conv_bn(cell.edges[e][_CONV3])[0] for e in out_edges)))
    targets = []
    for t in range(1, nb201.NUM_NODES):
        in_edges = tuple(e for e, (_s, tt) in enumerate(nb201.EDGES) if tt == t)
        assert in_edges == tuple(range(in_edges[0], in_edges[-1] + 1)), "incoming edges must be contiguous"
        bns = tuple(_relu_conv_bn(cell.edges[e][op])[1] for e in in_edges for op in (_CONV1, _CONV3))
        targets.append(_TargetPlan(t, in_edges, tuple(nb201.EDGES[e][0] for e in in_edges), bns))
    return CellPlan(tuple(sources), tuple(targets))


def resolve_grouping(grouping: str, device: torch.device) -> str:
    """'auto' → 'single' on GPUs (one launch, tensor cores), 'by_kernel' on the CPU (no zero taps)."""
    if grouping not in CONV_GROUPINGS:
        raise InputError(f"conv_grouping must be one of {', '.join(CONV_GROUPINGS)}, got {grouping!r}")
    if grouping == "auto":
        return "single" if device.type == "cuda" else "by_kernel"
    return grouping


def _cat_or_none(tensors: list[torch.Tensor | None]) -> torch.Tensor | None:
    return None if any(t is None for t in tensors) else torch.cat(tensors)  # type: ignore[arg-type]


def _engine_needs(t: torch.Tensor) -> bool:
    """Inside backward: whether this backward pass propagates into t (False for weights when only α's
    gradient is asked for, as in an architecture step), so their conv gradients can be skipped."""
    if torch.compiler.is_compiling():
        # Dynamo traces this backward ahead of any engine run, and asking the engine would break the
        # graph at every cell (29 graphs instead of one); a compiled backward fixes at trace time
        # which gradients it computes, so there is nothing to skip at run time anyway.
        return True
    try:
        return bool(torch._C._will_engine_execute_node(torch.autograd.graph.get_gradient_edge(t).node))
    except (RuntimeError, AttributeError):  # not inside an engine run (e.g. traced by torch.compile)
        return True


class _SharedReluConvs(torch.autograd.Function):
    """convs(relu(x)) for one or more convolutions of the same input, saving x instead of relu(x).

    x is saved anyway (the target nodes' skip and pool terms read it), so recomputing relu(x) in
    backward (one cheap elementwise pass) saves one activation-sized tensor per source node.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, paddings: tuple[int, ...], *params: torch.Tensor | None):
        relu = F.relu(x)
        conv = F.conv2d if x.dim() == 4 else F.conv1d
        outs = tuple(conv(relu, params[2 * i], params[2 * i + 1], padding=p) for i, p in enumerate(paddings))
        ctx.paddings = paddings
        ctx.has_bias = tuple(params[2 * i + 1] is not None for i in range(len(paddings)))
        ctx.save_for_backward(x, *(params[2 * i] for i in range(len(paddings))))
        return outs

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None):
        x, *weights = ctx.saved_tensors
        relu = F.relu(x)
        dim = x.dim() - 2
        grad_relu = None
        grad_params: list[torch.Tensor | None] = []
        for i, (weight, padding) in enumerate(zip(weights, ctx.paddings)):
            grad = grads[i]
            if grad is None:
                grad_params += [None, None]
                continue
            # The conv's weight and bias belong to the same modules: both needed or neither.
            want_weight = ctx.needs_input_grad[2 + 2 * i] and _engine_needs(weight)
            want_bias = ctx.has_bias[i] and ctx.needs_input_grad[2 + 2 * i + 1] and want_weight
            g_in, g_w, g_b = torch.ops.aten.convolution_backward(
                grad, relu, weight, [weight.shape[0]] if ctx.has_bias[i] else None, [1] * dim, [padding] * dim,
                [1] * dim, False, [0] * dim, 1, [ctx.needs_input_grad[0], want_weight, want_bias])
            grad_relu = g_in if grad_relu is None or g_in is None else grad_relu + g_in
            grad_params += [g_w if want_weight else None, g_b if want_bias else None]
        grad_x = None if grad_relu is None else torch.ops.aten.threshold_backward(grad_relu, x, 0)
        return (grad_x, None, *grad_params)


def _source_convs(plan: _SourcePlan, x: torch.Tensor, grouping: str) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """relu(x) once, then the outgoing edges' convolutions; returns edge -> (1×1 output, 3×3 output) views."""
    dim = x.dim() - 2
    C = plan.conv3[0].out_channels
    n = len(plan.edges)
    w1, b1 = [c.weight for c in plan.conv1], [c.bias for c in plan.conv1]
    w3, b3 = [c.weight for c in plan.conv3], [c.bias for c in plan.conv3]
    if grouping == "single":
        # Output channels [1×1 of every edge | 3×3 of every edge]; 1×1 kernels as centre taps of 3×3.
        weight = torch.cat([F.pad(torch.cat(w1), (1, 1) * dim), *w3])
        (out,) = _SharedReluConvs.apply(x, (1,), weight, _cat_or_none([*b1, *b3]))
        views = out.split(C, dim=1)
        return {e: (views[i], views[n + i]) for i, e in enumerate(plan.edges)}
    out3, out1 = _SharedReluConvs.apply(x, (1, 0), torch.cat(w3), _cat_or_none(b3), torch.cat(w1), _cat_or_none(b1))
    views3, views1 = out3.split(C, dim=1), out1.split(C, dim=1)
    return {e: (views1[i], views3[i]) for i, e in enumerate(plan.edges)}


@torch.no_grad()
def _update_running_stats(bns: tuple[nn.Module, ...], mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
    """What BatchNorm's training forward does to its buffers, from cell_node's batch statistics."""
    unbiased = var * (count / (count - 1))
    counters = [bn.num_batches_tracked for bn in bns if bn.num_batches_tracked is not None]
    if counters:
        torch._foreach_add_(counters, 1)
    momenta = {bn.momentum for bn in bns}
    if len(momenta) == 1 and None not in momenta:
        m = momenta.pop()
        rms, rvs = [bn.running_mean for bn in bns], [bn.running_var for bn in bns]
        torch._foreach_lerp_(rms, list(mean.to(rms[0].dtype).unbind(0)), m)
        torch._foreach_lerp_(rvs, list(unbiased.to(rvs[0].dtype).unbind(0)), m)
        return
    for b, bn in enumerate(bns):  # cumulative moving average (momentum=None), or mixed momenta
        m = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        bn.running_mean.lerp_(mean[b].to(bn.running_mean.dtype), m)
        bn.running_var.lerp_(unbiased[b].to(bn.running_var.dtype), m)


def _target_node(plan: _TargetPlan, nodes: list[torch.Tensor], convs: dict[int, tuple[torch.Tensor, torch.Tensor]],
                 weights: torch.Tensor) -> torch.Tensor:
    bns = plan.bns
    bn0 = bns[0]
    batch_stats = bn0.training or bn0.running_mean is None
    gamma = torch.stack([bn.weight for bn in bns]) if bn0.affine else None
    beta = torch.stack([bn.bias for bn in bns]) if bn0.affine else None
    running = (None, None) if batch_stats else (torch.stack([bn.running_mean for bn in bns]),
                                                 torch.stack([bn.running_var for bn in bns]))
    e0, e1 = plan.edges[0], plan.edges[-1] + 1
    inputs = [nodes[s] for s in plan.sources]
    # Under autocast the convolutions return a lower precision; the node runs in the activations' dtype.
    branches = [y if y.dtype == inputs[0].dtype else y.to(inputs[0].dtype) for e in plan.edges for y in convs[e]]
    out, mean, var = cell_node(inputs, branches, weights[e0:e1], gamma, beta, running[0], running[1], batch_stats,
                               bn0.eps)
    if bn0.training and bn0.track_running_stats:
        _update_running_stats(bns, mean, var, out.numel() // out.shape[1])
    return out


def fused_cell_forward(cell: SearchCell, x: torch.Tensor, weights: torch.Tensor, plan: CellPlan,
                       grouping: str = "auto") -> torch.Tensor:
    """The SearchCell's output (node 3) through the fused kernels; same values as the reference path."""
    grouping = resolve_grouping(grouping, x.device)
    nodes = [x]
    convs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for source, target in zip(plan.sources, plan.targets):
        # Node `target` needs every source < target; the newest one is target - 1 = source.
        convs.update(_source_convs(source, nodes[source.source], grouping))
        nodes.append(_target_node(target, nodes, convs, weights))
    return nodes[-1]
