"""search_cell: a whole NB201 search cell as one torch custom op (C++; CPU and CUDA).

A DARTS/GAEA search cell has 4 nodes and 6 edges e = (s -> t) (`nb360.space.nb201.EDGES`); every
edge mixes the five NB201 operations with its architecture weights `weights[e]`, and node t is the
sum of its incoming edges:

    edge(x_s) = w[e,skip] x_s + w[e,pool] avgpool3x3(x_s)
              + sum_j w[e,conv_j] BN_j(conv_j(relu x_s) + bias_j)          (j = 1x1, 3x3)

`search_cell(x, weights, conv_weight, ...)` returns node 3 and the (12, C) statistics the 12 BNs
normalised with (biased batch variance, or the running statistics in eval mode), branch b = 2e + j
in the order [e0 1x1, e0 3x3, e1 1x1, ...]: the caller updates running statistics from them.
The parameters are lists of 12 in that branch order: conv kernels (C, C, 1[, 1]) and (C, C, 3[, 3]),
optional conv biases, optional BN affine parameters, running statistics when `batch_stats=False`.

Inside (csrc/ops/search_cell.cpp): channels-last throughout, one 3x3 convolution and one GEMM (the
1x1 convolutions) per source node over all its outgoing edges, one fused `cell_node` kernel per
target node; backward in one op that writes and accumulates gradients in place, recomputes
relu(x_s), and computes the convolutions' weight gradients only when the backward pass asks for
them (an architecture step, `backward(inputs=[alpha])`, skips them; autograd is registered in C++). Node 3 comes back channels-last ((N, C, L): strides (L C, 1, C)).

`search_cell_reference` is the plain-PyTorch oracle (AutoDL's operations, edge by edge).
First derivatives only (DARTS' second-order step uses finite differences).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._extension import load_ops
from ..space import nb201
from .cell_node import cell_node_reference, empty_channels_last, stats_dtype

load_ops()

BRANCHES = 2 * nb201.NUM_EDGES  # 12 BN'd conv branches: 1x1 and 3x3 of every edge
_OUT_EDGES = [[e for e, (s, _t) in enumerate(nb201.EDGES) if s == src] for src in range(nb201.NUM_NODES - 1)]


def search_cell(x: torch.Tensor, weights: torch.Tensor, conv_weight: Sequence[torch.Tensor],
                conv_bias: Sequence[torch.Tensor] = (), bn_weight: Sequence[torch.Tensor] = (),
                bn_bias: Sequence[torch.Tensor] = (), running_mean: Sequence[torch.Tensor] = (),
                running_var: Sequence[torch.Tensor] = (), batch_stats: bool = True, eps: float = 1e-5,
                single_conv: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One fused NB201 search cell: returns (node 3, mean (12, C), var (12, C)); see the module docstring."""
    out, _saved, mean, var = torch.ops.nb360.search_cell.default(
        x, weights, list(conv_weight), list(conv_bias), list(bn_weight), list(bn_bias), list(running_mean),
        list(running_var), batch_stats, eps, single_conv)
    return out, mean, var


def search_cell_reference(x: torch.Tensor, weights: torch.Tensor, conv_weight: Sequence[torch.Tensor],
                          conv_bias: Sequence[torch.Tensor] = (), bn_weight: Sequence[torch.Tensor] = (),
                          bn_bias: Sequence[torch.Tensor] = (), running_mean: Sequence[torch.Tensor] = (),
                          running_var: Sequence[torch.Tensor] = (), batch_stats: bool = True, eps: float = 1e-5,
                          single_conv: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Plain-PyTorch search_cell, the test oracle: per edge relu → conv (+ bias) → BN, skip, pool, weighted."""
    del single_conv  # a performance choice of the fused op; same values
    conv = F.conv2d if x.dim() == 4 else F.conv1d
    nodes = [x]
    means, variances = [], []

    def stacked(ts, rows):
        return None if len(ts) == 0 else torch.stack([ts[b] for b in rows])

    for target in range(1, nb201.NUM_NODES):
        edges = [e for e, (_s, t) in enumerate(nb201.EDGES) if t == target]
        rows = [2 * e + j for e in edges for j in range(2)]
        convs = []
        for e in edges:
            relu = F.relu(nodes[nb201.EDGES[e][0]])
            for j, padding in ((0, 0), (1, 1)):
                bias = None if len(conv_bias) == 0 else conv_bias[2 * e + j]
                convs.append(conv(relu, conv_weight[2 * e + j], bias, padding=padding))
        out, mean, var = cell_node_reference(
            [nodes[nb201.EDGES[e][0]] for e in edges], convs, weights[edges[0]:edges[-1] + 1],
            stacked(bn_weight, rows), stacked(bn_bias, rows), stacked(running_mean, rows), stacked(running_var, rows),
            batch_stats, eps)
        nodes.append(out)
        means.append(mean)
        variances.append(var)
    return nodes[-1], torch.cat(means), torch.cat(variances)


# ---------------------------------------------------------------- torch.compile / autograd support

def _as4d_empty(x: torch.Tensor, channels: int) -> torch.Tensor:
    n, h, w = x.shape[0], (x.shape[2] if x.dim() == 4 else 1), x.shape[-1]
    return torch.empty((n, channels, h, w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)


@torch.library.register_fake("nb360::search_cell")
def _search_cell_fake(x, weights, conv_weight, conv_bias, bn_weight, bn_bias, running_mean, running_var,
                      batch_stats, eps, single_conv):
    torch._check(weights.shape == (nb201.NUM_EDGES, nb201.NUM_OPS), lambda: "search_cell: weights must be (6, 5)")
    torch._check(len(conv_weight) == BRANCHES, lambda: "search_cell: conv_weight must hold 12 kernels")
    C = x.shape[1]
    saved = [_as4d_empty(x, C), _as4d_empty(x, C)]
    for edges in _OUT_EDGES:
        k = len(edges)
        saved += [_as4d_empty(x, 2 * k * C)] if single_conv else [_as4d_empty(x, k * C), _as4d_empty(x, k * C)]
    stats = x.new_empty((BRANCHES, C), dtype=stats_dtype(x.dtype))
    return empty_channels_last(x), saved, stats, torch.empty_like(stats)


@torch.library.register_fake("nb360::search_cell_backward")
def _search_cell_backward_fake(grad, x, saved, weights, conv_weight, conv_bias, bn_weight, bn_bias, mean, var,
                               batch_stats, eps, single_conv, output_mask):
    want_input, want_conv, want_bn = output_mask
    grad_x = empty_channels_last(x) if want_input else x.new_empty((0,))
    contiguous = [torch.empty(w.shape, dtype=w.dtype, device=w.device) for w in conv_weight] if want_conv else []
    biases = [torch.empty(b.shape, dtype=b.dtype, device=b.device) for b in conv_bias] if want_conv else []
    bn = want_bn and len(bn_weight) > 0
    return (grad_x, torch.empty(weights.shape, dtype=weights.dtype, device=weights.device), contiguous, biases,
            [torch.empty_like(w) for w in bn_weight] if bn else [], [torch.empty_like(b) for b in bn_bias] if bn else [])


# Autograd: registered in C++ (csrc/ops/search_cell.cpp, SearchCellFunction), where the backward asks the
# engine which gradients it needs, so an architecture step skips the conv weight gradients.
