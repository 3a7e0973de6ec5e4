"""The fused forward of an NB201 search cell: the whole cell as one `nb360::search_cell` op.

One op per cell, forward and backward (C++, csrc/ops/search_cell.cpp), channels-last throughout:
per source node s, relu(x_s) once for every conv op on every edge leaving s and their convolutions
grouped -- `conv_grouping="by_kernel"` (the CPU default): one 3×3 convolution (oneDNN / cuDNN) for
all outgoing 3×3 ops and one GEMM for all their 1×1 ops (a 1×1 convolution in NHWC);
`"single"` (the GPU default): one 3×3 convolution whose output channels are [1×1 of every outgoing
edge, zero-padded to the centre tap | 3×3 of every outgoing edge] (oneDNN on CPUs computes the zero
taps, ~1.8× the conv FLOPs; see benchmarks/RESULTS.md). Per target node t, one fused `cell_node`
kernel batch-normalises every conv branch, weights every operation by its architecture weight,
adds skip and the 3×3 average pool, and sums the incoming edges. The backward writes gradients in
place, recomputes relu(x_s) instead of saving it, and skips the conv weight gradients when the
backward pass does not ask for them (an architecture step).

The parameters stay in the SearchCell's own modules (same state dict as the reference path, which
stays available for checking; while a cell runs fused its 3×3 kernels are stored channels-last, see
`set_kernel_layout`, so that torch.compile hands them to the op as themselves); running statistics are updated here from the statistics the op
returns, exactly as BatchNorm does (momentum or cumulative average, unbiased variance,
`num_batches_tracked`). The cell's output is channels-last; the next cell reads it in place.

Cells whose node-0 edges change the channel count (the growth cells of dense networks) are not
fusable — skip_connect there is a 1×1 conv + BN without ReLU, and the pool has its own ReLUConvBN —
and keep the reference path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from ..errors import InputError
from ..ops.search_cell import search_cell
from ..ops.cells import Identity, Pooling, ReLUConvBN
from ..space import nb201

if TYPE_CHECKING:
    from .supernet import SearchCell

ConvGrouping = Literal["auto", "single", "by_kernel"]
CONV_GROUPINGS = ("auto", "single", "by_kernel")

_SKIP, _CONV1, _CONV3, _POOL = (nb201.OPS.index(op) for op in ("skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                                               "avg_pool_3x3"))


@dataclass(frozen=True)
class CellPlan:
    """Which modules of a SearchCell feed the fused op (built once per cell), in the op's branch order
    b = 2 e + j: [edge 0 nor_conv_1x1, edge 0 nor_conv_3x3, edge 1 nor_conv_1x1, ...]."""

    convs: tuple[nn.Module, ...]
    bns: tuple[nn.BatchNorm2d | nn.BatchNorm1d, ...]


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
    """The conv and BN modules of a fusable SearchCell, in the fused op's branch order."""
    pairs = [_relu_conv_bn(cell.edges[e][op]) for e in range(nb201.NUM_EDGES) for op in (_CONV1, _CONV3)]
    return CellPlan(tuple(conv for conv, _bn in pairs), tuple(bn for _conv, bn in pairs))


def set_kernel_layout(plan: CellPlan, channels_last: bool) -> None:
    """Store the plan's 3×3 conv kernels channels-last (fused path) or contiguous (reference path).

    Why: under torch.compile, inductor's layout optimisation prefers channels-last for every tensor
    upstream of a convolution, including these kernels; as the op wants its inputs' eager strides, a
    contiguous kernel then reaches the compiled op as a fresh copy (in the forward, and another saved
    for the backward). A kernel that is already channels-last is passed as itself, so the compiled
    backward can recognise it and skip its gradient in an architecture step (csrc/ops/search_cell.cpp,
    conv_gradients_consumed). Values are unchanged; the reference path gets contiguous kernels back so
    its convolutions keep their NCHW layout.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with torch.no_grad():
        for conv in plan.convs:
            w = conv.weight
            if w.dim() == 4 and w.shape[-1] > 1 and not w.is_contiguous(memory_format=fmt):
                w.data = w.data.contiguous(memory_format=fmt)


def resolve_grouping(grouping: str, device: torch.device) -> str:
    """'auto' → 'single' on GPUs (one launch, tensor cores), 'by_kernel' on the CPU (no zero taps)."""
    if grouping not in CONV_GROUPINGS:
        raise InputError(f"conv_grouping must be one of {', '.join(CONV_GROUPINGS)}, got {grouping!r}")
    if grouping == "auto":
        return "single" if device.type == "cuda" else "by_kernel"
    return grouping


@torch.no_grad()
def _update_running_stats(bns: tuple[nn.Module, ...], mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
    """What BatchNorm's training forward does to its buffers, from the fused op's batch statistics."""
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


def fused_cell_forward(cell: SearchCell, x: torch.Tensor, weights: torch.Tensor, plan: CellPlan,
                       grouping: str = "auto") -> torch.Tensor:
    """The SearchCell's output (node 3) through the fused op; same values as the reference path."""
    single = resolve_grouping(grouping, x.device) == "single"
    bns = plan.bns
    bn0 = bns[0]
    batch_stats = bn0.training or bn0.running_mean is None
    conv_weight = [conv.weight for conv in plan.convs]
    # Under autocast the convolutions would run in a lower precision; the op runs in the activations' dtype.
    if conv_weight[0].dtype != x.dtype:
        conv_weight = [w.to(x.dtype) for w in conv_weight]
    conv_bias = [conv.bias for conv in plan.convs] if plan.convs[0].bias is not None else []
    affine = [bn.weight for bn in bns] if bn0.affine else [], [bn.bias for bn in bns] if bn0.affine else []
    running = ([], []) if batch_stats else ([bn.running_mean for bn in bns], [bn.running_var for bn in bns])
    out, mean, var = search_cell(x, weights, conv_weight, conv_bias, *affine, *running, batch_stats,
                                 bn0.eps, single)
    if bn0.training and bn0.track_running_stats:
        _update_running_stats(bns, mean, var, out.numel() // out.shape[1])
    return out
