"""The DARTS-space supernet (DARTS, PC-DARTS, GAEA), for 2D point, 2D dense and 1D point tasks.

As DARTS's `model_search.Network` (quark0/darts `cnn/model_search.py`) with PC-DARTS's
extensions (yuhuixu1993/PC-DARTS `model_search.py`; NAS-Bench-360 `darts/gaea/search`):

- stem Conv 3×3 (→ 3C) + BN, `layers` search cells (8 by default), reductions at layers//3 and
  2·layers//3 for point tasks, none for dense tasks (NAS-Bench-360's dense search net), global
  pooling + Linear (point) or a per-pixel Linear (dense);
- every cell edge is a `MixedOp` over the 8 DARTS operations (`affine=False`, pooling followed by
  a non-affine BN), `sum_o w[o] · op_o(x)`; node i sums its incoming edges; the cell outputs the
  concatenation of its 4 nodes;
- two (14, 8) architecture tensors (normal, reduce), stored as one α of shape (2, 14, 8),
  initialised to 1e-3·randn; op weights softmax(α) per edge;
- PC-DARTS (`partial_channels=K`): each mixed op runs on the first C/K channels only, the rest
  bypass it (through MaxPool 2 in reduction edges), then `channel_shuffle(·, K)`;
  edge normalisation (`edge_weights=True`): β of shape (2, 14), softmax over each node's incoming
  edges, scaling each edge's output, and multiplying its op weights before the top-2 edge choice.

`forward(x, weights=None)` takes optional `MixWeights` (op weights (2, 14, 8) and edge weights
(2, 14) or None) so DARTS (softmax), GAEA (the simplex itself) and hand-made one-hot weights drive
the same network. `genotype()` applies the DARTS rule; `discretize()` builds the discrete cell
network with the supernet's weights (the one-shot proxy).

Shared ReLU: the four convolutional ops of an edge (sep 3/5, dil 3/5) all start with ReLU of the
same input; `MixedOp` computes it once and runs each op's remaining layers on it (same values, 3 fewer
ReLUs per edge and their saved activations), as the fused NB201 path does per source node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..ops.cells import conv_bn_stem
from ..ops.darts_ops import FactorizedReduce, ReLUConvBN, make_op
from ..space import darts
from .darts_eval import STEM_MULTIPLIER, DartsNetwork, cell_plan
from .dense import WindowedInference, topology_layout
from .nb201 import classify

NODE_SLICES: tuple[slice, ...] = tuple(slice(r.start, r.stop) for r in (darts.node_edges(t) for t in
                                                                        range(2, 2 + darts.STEPS)))


class MixWeights(NamedTuple):
    """Architecture weights a DARTS supernet mixes with: ops (2, 14, 8) [normal, reduce], edges (2, 14) or None."""

    ops: torch.Tensor
    edges: torch.Tensor | None = None

    def detach(self) -> MixWeights:
        """Detached copy of both parts."""
        return MixWeights(self.ops.detach(), None if self.edges is None else self.edges.detach())

    def cpu(self) -> MixWeights:
        """Both parts on the CPU."""
        return MixWeights(self.ops.cpu(), None if self.edges is None else self.edges.cpu())

    def tolist(self) -> dict[str, Any]:
        """JSON-ready {"ops": [[...]], "edges": [[...]] or None}."""
        return {"ops": self.ops.tolist(), "edges": None if self.edges is None else self.edges.tolist()}


def node_softmax(beta: torch.Tensor) -> torch.Tensor:
    """Softmax of (..., 14) edge parameters over each node's incoming edges (PC-DARTS's weights2)."""
    return torch.cat([torch.softmax(beta[..., s], dim=-1) for s in NODE_SLICES], dim=-1)


def node_normalize(p: torch.Tensor) -> torch.Tensor:
    """(..., 14) non-negative edge weights divided by their sum over each node's incoming edges."""
    return torch.cat([p[..., s] / p[..., s].sum(dim=-1, keepdim=True) for s in NODE_SLICES], dim=-1)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """PC-DARTS's channel shuffle: (N, g·c, ...) → view (N, g, c, ...) → transpose → (N, c·g, ...)."""
    n, channels = x.shape[:2]
    rest = x.shape[2:]
    return x.reshape(n, groups, channels // groups, *rest).transpose(1, 2).reshape(n, channels, *rest)


def _leading_relu(op: nn.Module) -> bool:
    seq = getattr(op, "op", None)
    return isinstance(seq, nn.Sequential) and isinstance(seq[0], nn.ReLU)


class MixedOp(nn.Module):
    """All 8 DARTS operations on one edge, mixed by weights; partial channels when K > 1."""

    def __init__(self, C: int, stride: int, dim: int = 2, partial_channels: int = 1, shared_relu: bool = True) -> None:
        super().__init__()
        self.k, self.stride, self.dim, self.shared_relu = partial_channels, stride, dim, shared_relu
        self._ops = nn.ModuleList(make_op(p, C // partial_channels, stride, False, dim, search=True)
                                  for p in darts.PRIMITIVES)
        # PC-DARTS bypasses the unused channels through MaxPool 2 in reduction edges (ceil_mode: ⌈n/2⌉ like the ops)
        self.mp = ((nn.MaxPool2d if dim == 2 else nn.MaxPool1d)(2, 2, ceil_mode=True)
                   if partial_channels > 1 and stride == 2 else None)

    def mix(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_o weights[o] · op_o(x) (DARTS's expression and order)."""
        relu = F.relu(x) if self.shared_relu else None
        outputs = []
        for op in self._ops:
            if relu is not None and _leading_relu(op):
                out = relu
                for layer in list(op.op)[1:]:
                    out = layer(out)
            else:
                out = op(x)
            outputs.append(out)
        return sum(w * out for w, out in zip(weights, outputs))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The mixed edge output (all channels, partial channels mixed and shuffled when K > 1)."""
        if self.k == 1:
            return self.mix(x, weights)
        split = x.shape[1] // self.k
        mixed = self.mix(x[:, :split], weights)
        rest = x[:, split:]
        out = torch.cat([mixed, rest if self.mp is None else self.mp(rest)], dim=1)
        return channel_shuffle(out, self.k)


class SearchCell(nn.Module):
    """A DARTS search cell: 14 mixed edges; node i sums its (edge-weighted) incoming edges; output = concat."""

    def __init__(self, C_prev_prev: int, C_prev: int, C: int, reduction: bool, reduction_prev: bool, dim: int = 2,
                 partial_channels: int = 1, shared_relu: bool = True) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(C_prev_prev, C, False, dim) if reduction_prev
                            else ReLUConvBN(C_prev_prev, C, 1, 1, 0, False, dim))
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, False, dim)
        self._ops = nn.ModuleList(
            MixedOp(C, 2 if reduction and source < darts.NUM_INPUT_NODES else 1, dim, partial_channels, shared_relu)
            for source, _target in darts.EDGES)
        self.multiplier = darts.STEPS

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                edge_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Run the cell with (14, 8) op weights and optional (14,) edge weights."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _step in range(darts.STEPS):
            if edge_weights is None:
                s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            else:
                s = sum(edge_weights[offset + j] * self._ops[offset + j](h, weights[offset + j])
                        for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self.multiplier:], dim=1)


class DartsSupernet(WindowedInference, nn.Module):
    """The DARTS-space supernet (see the module docstring)."""

    def __init__(self, num_outputs: int, in_channels: int = 3, C: int = 16, layers: int = 8,
                 topology: str = "point2d", partial_channels: int = 1, edge_weights: bool = False,
                 shared_relu: bool = True) -> None:
        super().__init__()
        if num_outputs < 1 or in_channels < 1 or C < 1:
            raise InputError(f"num_outputs, in_channels and C must be positive, got {num_outputs}, {in_channels}, {C}")
        if partial_channels < 1 or C % partial_channels or (C // partial_channels) % 2:
            raise InputError(f"partial channels K={partial_channels} must divide C={C} into an even number of "
                             "channels (FactorizedReduce halves them): e.g. C=16, K=4")
        dim, dense = topology_layout(topology)
        self.topology, self.dim, self.dense = topology, dim, dense
        self.C, self.layers, self.in_channels, self.num_outputs = C, layers, in_channels, num_outputs
        self.partial_channels, self.uses_edge_weights = partial_channels, edge_weights
        C_stem = STEM_MULTIPLIER * C
        self.stem = conv_bn_stem(in_channels, C_stem, dim)
        self.cells = nn.ModuleList()
        C_prev_prev, C_prev = C_stem, C_stem
        for mult, reduction, reduction_prev in cell_plan(layers, dense):
            cell = SearchCell(C_prev_prev, C_prev, mult * C, reduction, reduction_prev, dim, partial_channels,
                              shared_relu)
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, cell.multiplier * mult * C
        self.global_pooling = None if dense else (nn.AdaptiveAvgPool2d(1) if dim == 2 else nn.AdaptiveAvgPool1d(1))
        self.classifier = nn.Linear(C_prev, num_outputs)
        self.alpha = nn.Parameter(1e-3 * torch.randn(len(darts.CELL_TYPES), darts.NUM_EDGES, darts.NUM_OPS))
        self.beta = (nn.Parameter(1e-3 * torch.randn(len(darts.CELL_TYPES), darts.NUM_EDGES)) if edge_weights
                     else None)

    # ----- parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        """[α] or [α, β] (edge normalisation)."""
        return [self.alpha] if self.beta is None else [self.alpha, self.beta]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the architecture parameters."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def arch_weights(self, tau: float = 1.0) -> MixWeights:
        """softmax(α / τ) per edge, and the per-node softmax of β (or None)."""
        ops = torch.softmax(self.alpha / tau, dim=-1)
        return MixWeights(ops, None if self.beta is None else node_softmax(self.beta))

    # ----- GAEA: weights on the simplex
    def simplex_init(self) -> list[torch.Tensor]:
        """Uniform op weights (and uniform per-node edge weights) on the simplex, as GAEA initialises them."""
        ops = torch.full_like(self.alpha, 1.0 / darts.NUM_OPS).detach()
        parts = [ops]
        if self.beta is not None:
            parts.append(node_normalize(torch.ones_like(self.beta)).detach())
        return parts

    @staticmethod
    def simplex_normalize(parts: Sequence[torch.Tensor], exclude_none: bool = False) -> list[torch.Tensor]:
        """GAEA's normalize (gaea_release cnn/architect/architect_edarts.py `step`): ops clamp(p, 1e-5) / sum per
        edge; edges divided by their node's sum, not clamped (the clamp there is commented out)."""
        ops = parts[0].clamp(min=1e-5)
        if exclude_none:
            ops = ops.clone()
            ops[..., darts.NONE] = 0.0
        out = [ops / ops.sum(dim=-1, keepdim=True)]
        if len(parts) > 1:
            out.append(node_normalize(parts[1]))
        return out

    @staticmethod
    def simplex_mix(parts: Sequence[torch.Tensor]) -> MixWeights:
        """The simplex parts as the MixWeights the network uses directly (no softmax)."""
        return MixWeights(parts[0], parts[1] if len(parts) > 1 else None)

    # ----- forward
    def _check_weights(self, weights: MixWeights) -> None:
        if not isinstance(weights, MixWeights):
            raise InputError(f"DARTS supernet weights must be MixWeights(ops, edges), got {type(weights).__name__}")
        if tuple(weights.ops.shape) != tuple(self.alpha.shape):
            raise InputError(f"op weights must have shape {tuple(self.alpha.shape)}, got {tuple(weights.ops.shape)}")
        if weights.edges is not None and tuple(weights.edges.shape) != (len(darts.CELL_TYPES), darts.NUM_EDGES):
            raise InputError(f"edge weights must have shape (2, 14), got {tuple(weights.edges.shape)}")

    def forward_features(self, x: torch.Tensor, weights: MixWeights | None = None) -> torch.Tensor:
        """The last cell's output with the given (or the current) architecture weights."""
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            want = "(N, C, H, W)" if self.dim == 2 else "(N, C, L)"
            raise InputError(f"the DARTS supernet expects a {want} batch with C={self.in_channels}, got shape "
                             f"{tuple(x.shape)}")
        if weights is None:
            weights = self.arch_weights()
        self._check_weights(weights)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            t = 1 if cell.reduction else 0
            s0, s1 = s1, cell(s0, s1, weights.ops[t], None if weights.edges is None else weights.edges[t])
        return s1

    def forward(self, x: torch.Tensor, weights: MixWeights | None = None) -> torch.Tensor:
        """Logits with architecture weights `weights` (default: softmax of α and β)."""
        return classify(self, self.forward_features(x, weights))

    # ----- discretisation
    def genotype(self, weights: MixWeights | None = None) -> str:
        """The DARTS-rule genotype (text) of `weights` (default: the current softmax weights)."""
        w = (self.arch_weights() if weights is None else weights).detach().cpu()
        edges = w.edges
        return darts.to_str(darts.discretize(w.ops[0], w.ops[1], None if edges is None else edges[0],
                                             None if edges is None else edges[1]))

    def one_hot(self, genotype: darts.GenotypeLike) -> MixWeights:
        """MixWeights selecting exactly the genotype's ops and edges (other edges weigh 0)."""
        g = darts.resolve(genotype)
        ops = torch.tensor([darts.selection(g, kind) for kind in darts.CELL_TYPES], dtype=self.alpha.dtype,
                           device=self.alpha.device)
        edges = (ops.sum(dim=-1) > 0).to(ops.dtype)
        return MixWeights(ops, edges)

    def discretize(self, genotype: darts.GenotypeLike | None = None) -> nn.Module:
        """The genotype's cell network inheriting this supernet's weights (default: the current genotype).

        With full channels (K = 1) a `DartsNetwork` with the search operations and the chosen ops'
        weights copied; with partial channels the chosen ops see only C/K channels, so the result
        is this supernet run with the genotype's one-hot weights (`FixedArchitecture`).
        """
        g = darts.resolve(self.genotype() if genotype is None else genotype)
        if self.partial_channels > 1:
            return FixedArchitecture(self, g)
        net = DartsNetwork(g, self.num_outputs, self.in_channels, self.C, self.layers, self.topology, affine=False,
                           search_ops=True).to(self.alpha.device, self.alpha.dtype)
        state = {}
        source = self.state_dict()
        for name in net.state_dict():
            parts = name.split(".")
            if parts[0] == "cells" and parts[2] == "_ops":
                # cells.<k>._ops.<i>.rest <- cells.<k>._ops.<edge>._ops.<op>.rest
                cell, i, rest = parts[1], int(parts[3]), parts[4:]
                kind = "reduce" if self.cells[int(cell)].reduction else "normal"
                op, index = g.cell(kind)[i]
                edge = darts.edge_index(darts.NUM_INPUT_NODES + i // 2, index)
                src = ".".join(["cells", cell, "_ops", str(edge), "_ops", str(darts.PRIMITIVES.index(op)), *rest])
            else:
                src = name
            state[name] = source[src].clone()
        net.load_state_dict(state, strict=True)
        return net.train(self.training)

    def extra_repr(self) -> str:
        return (f"C={self.C}, layers={self.layers}, topology={self.topology}, "
                f"partial_channels={self.partial_channels}, edge_weights={self.uses_edge_weights}")


class FixedArchitecture(nn.Module):
    """A supernet run with the one-hot weights of one genotype (the discretised proxy for partial channels)."""

    def __init__(self, supernet: DartsSupernet, genotype: darts.GenotypeLike) -> None:
        super().__init__()
        self.supernet = supernet
        self.genotype = darts.resolve(genotype)
        self.input_shape = getattr(supernet, "input_shape", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The supernet's output with the genotype's one-hot op and edge weights."""
        return self.supernet(x, self.supernet.one_hot(self.genotype))
