"""Differentiable expected size / FLOPs of the DARTS evaluation network under DARTS-space architecture weights.

E2RNAS's size objective in the DARTS space (search-methods.md §1.4): a per-op parameter cost
vector u(C) at each cell's width (sep 3/5, dil 3/5 convs; pooling, identity and `none` free;
FactorizedReduce, C²+2C, for `skip_connect` on the 8 stride-2 edges of reduction cells), weighted
by the op weights of each edge and summed over the cells. Here the costs are counted from the
actual modules of the *evaluation* network (20 cells, C=36 by default, affine BN; the auxiliary
head excluded, as DARTS counts), which reproduces u(C) exactly (tests check it against
`nb360.space.darts.op_param_cost`), also gives FLOPs (NB201's rule, `nb360.models.counting`) and
covers the dense and 1D variants.

A genotype keeps two of the n incoming edges of every node. The expectation therefore weights
edge e of a node by its keep weight q_e: 2·(edge weight / the node's sum) with edge normalisation
(PC-DARTS / GAEA weights already sum to 1 per node; a genotype's 0/1 selection gives 1 per kept
edge), else 2/n (every edge equally likely; E2RNAS v1's `2·…/n_in`). So

    P(p, q) = base + Σ_type Σ_e q[type, e] Σ_o p[type, e, o] · table[type, e, o],

where table[type, e, o] sums op o's cost on edge e over every cell of that type and base is
everything else (stem, preprocessing, head). P is linear in p; for the genotype's own selection
(p one-hot on kept edges, q = 1 there and 0 elsewhere, `of`) it is that network's exact count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InputError
from ..ops.darts_ops import make_op
from ..space import darts
from .counting import count_flops, count_parameters
from .darts_eval import DartsNetwork, EvalCell
from .darts_search import MixWeights, node_normalize
from .dense import topology_layout

_ZERO_COST_GENOTYPE = darts.make([("max_pool_3x3", 0), ("max_pool_3x3", 1)] * darts.STEPS,
                                 [("max_pool_3x3", 0), ("max_pool_3x3", 1)] * darts.STEPS)


@dataclass(frozen=True)
class DartsCostModel:
    """base + Σ q · p · table over cell types, edges and ops (see the module docstring)."""

    base: float
    table: torch.Tensor  # (2, 14, 8) float64
    kind: str  # "params" or "flops"
    network: dict[str, Any]  # the evaluation network the costs are of (C, layers, topology)

    @staticmethod
    def keep_weights(edges: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """(2, 14) expected number of times each edge is kept: 2·(edge weight / its node's sum), or 2/n without."""
        if edges is not None:
            return 2.0 * node_normalize(edges)
        counts = torch.tensor(darts.incoming_counts(), dtype=like.dtype, device=like.device)
        return (2.0 / counts).expand(len(darts.CELL_TYPES), darts.NUM_EDGES)

    def expected(self, weights: MixWeights) -> torch.Tensor:
        """The expected cost under `weights` (differentiable in both parts)."""
        if not isinstance(weights, MixWeights) or tuple(weights.ops.shape) != tuple(self.table.shape):
            raise InputError(f"DARTS cost models take MixWeights with ops of shape {tuple(self.table.shape)}")
        table = self.table.to(device=weights.ops.device, dtype=weights.ops.dtype)
        keep = self.keep_weights(weights.edges, weights.ops)
        return self.base + (keep.unsqueeze(-1) * weights.ops * table).sum()

    def of(self, genotype: darts.GenotypeLike) -> float:
        """The exact cost of one genotype's evaluation network."""
        total = self.base
        for t, kind in enumerate(darts.CELL_TYPES):
            for e, row in enumerate(darts.selection(genotype, kind)):
                total += sum(count * float(self.table[t, e, o]) for o, count in enumerate(row))
        return total

    def range(self) -> tuple[float, float]:
        """(smallest, largest) cost over genotypes of the DARTS rule (two distinct edges per node, no `none`)."""
        low = high = self.base
        for t in range(len(darts.CELL_TYPES)):
            for target in range(darts.NUM_INPUT_NODES, darts.NUM_INPUT_NODES + darts.STEPS):
                rows = self.table[t, list(darts.node_edges(target))][:, 1:]  # without `none`
                low += float(rows.min(dim=1).values.sort().values[:2].sum())
                high += float(rows.max(dim=1).values.sort(descending=True).values[:2].sum())
        return low, high


def darts_cost_model(num_outputs: int, in_channels: int, topology: str, kind: str = "params", *, C: int = 36,
                     layers: int = 20, input_size: Sequence[int] | None = None) -> DartsCostModel:
    """The cost model of the DARTS evaluation network (C, layers) for a task shape; FLOPs need the input size."""
    if kind not in ("params", "flops"):
        raise InputError(f"kind must be 'params' or 'flops', got {kind!r}")
    dim, _dense = topology_layout(topology)
    skeleton = DartsNetwork(_ZERO_COST_GENOTYPE, num_outputs, in_channels, C, layers, topology)
    cells = [c for c in skeleton.cells if isinstance(c, EvalCell)]
    spatial: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}  # cell -> (input size, output size)
    if kind == "flops":
        if input_size is None or len(input_size) != dim:
            raise InputError(f"FLOP cost models need the {dim}D input size of the task, got {input_size!r}")
        hooks = [cell.register_forward_hook(lambda m, i, o, k=k: spatial.__setitem__(
            k, (tuple(i[1].shape[2:]), tuple(o.shape[2:]))))
                 for k, cell in enumerate(cells)]
        try:
            base = count_flops(skeleton, (in_channels, *input_size))
        finally:
            for h in hooks:
                h.remove()
    else:
        base = count_parameters(skeleton)  # max pooling costs nothing, so this is everything outside the ops

    cache: dict[tuple[Any, ...], int] = {}

    def op_cost(op: str, width: int, stride: int, size: tuple[int, ...]) -> int:
        key = (op, width, stride, size)
        if key not in cache:
            module = make_op(op, width, stride, True, dim)
            cache[key] = count_parameters(module) if kind == "params" else count_flops(module, (width, *size))
        return cache[key]

    table = torch.zeros(len(darts.CELL_TYPES), darts.NUM_EDGES, darts.NUM_OPS, dtype=torch.float64)
    for k, cell in enumerate(cells):
        t = 1 if cell.reduction else 0
        width = cell.preprocess1.op[1].out_channels
        sizes = spatial.get(k, ((), ()))
        for e, (source, _target) in enumerate(darts.EDGES):
            from_input = source < darts.NUM_INPUT_NODES  # edges out of the cell inputs (stride 2 when reducing)
            stride = 2 if cell.reduction and from_input else 1
            size = sizes[0] if from_input else sizes[1]  # later nodes already have the cell's output size
            for o, op in enumerate(darts.PRIMITIVES):
                table[t, e, o] += op_cost(op, width, stride, size)
    network = {"C": C, "layers": layers, "topology": topology, "num_outputs": num_outputs,
               "in_channels": in_channels}
    return DartsCostModel(base=float(base), table=table, kind=kind, network=network)
