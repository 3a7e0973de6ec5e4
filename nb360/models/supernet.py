"""The NB201 weight-sharing supernet (DARTS-style), for 2D point, 2D dense and 1D point tasks.

As NAS-Bench-201's DARTS (`AutoDL xautodl/models/cell_searchs/search_model_darts.py`,
`search_cells.py::NAS201SearchCell`): the TinyNetwork skeleton with every cell edge a mixed op
over the five operations, `sum_o w[e, o] * op_o(x)`; one (6, 5) architecture tensor shared by all
cells, initialised to 1e-3·randn; architecture weights softmax(α) per edge. Cell ops use
`affine=False` by default (search), so their convs carry a bias; stem, reduction blocks and
`lastact` stay affine, as in the original. Discretisation: argmax per edge (`genotype`), with a flag
to exclude `none` (AutoDL keeps it; GAEA/NASLib exclude it).

`forward(x, weights=None)` takes optional architecture weights (any (6, 5) tensor: one-hot,
Gumbel hard weights, GAEA's simplex weights) so every search method can drive the same network,
or a `Path`: one op per edge, run alone (AutoDL's `forward_dynamic`, and with straight-through
weights its `forward_gdas`), the same for every cell or one per cell (`forward_urs`).
The per-node computation lives in `SearchCell.compute_node` (the reference path). With `fused=True`
(the default where nb360's fused kernels exist for the input's device) each cell runs through
`nb360.models.fused_cell` instead: the whole cell as one `nb360::search_cell` op (one ReLU and
grouped convolutions per source node, one fused node kernel per target node, channels-last), with
the same parameters, buffers and values; `fused=False` keeps the plain-PyTorch reference path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import BuildError, InputError
from ..ops import mixed_sum
from ..ops.cell_node import fused_kernels_available
from ..ops.cells import ResNetBasicblock, batchnorm_cls, conv_bn_stem, make_op
from ..space import nb201
from .dense import WindowedInference, topology_layout
from .fused_cell import ConvGrouping, build_plan, fusable, fused_cell_forward, resolve_grouping, set_kernel_layout
from .nb201 import TinyNetwork, classify, stage_plan

MixedSumImpl = Literal["reference", "mixed_sum"]


@dataclass
class Path:
    """Sampled architectures the supernet runs one op per edge of (only the chosen ops are computed).

    `index`: (6,) op ids shared by every cell, or (cells, 6) one row per search cell. `weights`:
    optional (6, 5) straight-through weights (GDAS): each edge then returns
    w[e, a]·op_a(x) + Σ_{o≠a} w[e, o] (AutoDL `NAS201SearchCell.forward_gdas`), so the loss reaches
    every weight of the edge while only op a runs; without weights an edge returns op_a(x)
    (`forward_dynamic`).
    """

    index: torch.Tensor
    weights: torch.Tensor | None = None

    def row(self, cell: int) -> torch.Tensor:
        """The op ids of search cell `cell`."""
        return self.index if self.index.dim() == 1 else self.index[cell]


class SearchCell(nn.Module):
    """An NB201 cell whose every edge holds all five operations (`edges[e][o]`, EDGES × OPS order)."""

    def __init__(self, C_in: int, C_out: int, stride: int = 1, affine: bool = False,
                 track_running_stats: bool = True, dim: int = 2, mixed: MixedSumImpl = "reference",
                 fused: bool | None = None, conv_grouping: ConvGrouping = "auto") -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList(
                make_op(op, C_in, C_out, stride, affine, track_running_stats, dim) if source == 0
                else make_op(op, C_out, C_out, 1, affine, track_running_stats, dim)
                for op in nb201.OPS)
            for source, _target in nb201.EDGES
        )
        self.in_dim, self.out_dim = C_in, C_out
        self.mixed = mixed
        resolve_grouping(conv_grouping, torch.device("cpu"))  # validates the name
        # Module lists for the fused path; None for cells it cannot run (channel-changing edges).
        self._fused_plan = build_plan(self) if fusable(self) else None
        self.fused, self.conv_grouping = fused, conv_grouping

    @property
    def fused(self) -> bool | None:
        """True: the fused kernels; None: where available; False: the reference path."""
        return self._fused

    @fused.setter
    def fused(self, value: bool | None) -> None:
        self._fused = value
        if self._fused_plan is not None:  # the kernels' layout each path runs best (and compiles) with
            set_kernel_layout(self._fused_plan, channels_last=value is not False)

    def uses_fused(self, device: torch.device) -> bool:
        """Whether forward on `device` runs the fused kernels (fused=None: wherever they are available)."""
        if self.fused is False or self._fused_plan is None:
            return False
        if fused_kernels_available(device):
            return True
        if self.fused:
            raise BuildError(f"fused=True but nb360 has no fused cell kernels for {device.type} (CUDA kernels need "
                             "nb360 built against a CUDA build of torch): rebuild, or use fused=None / False")
        return False

    def mixed_edge(self, edge: int, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_o weights[o] * op_o(x) over the five operations of one edge."""
        outputs = [op(x) for op in self.edges[edge]]
        if self.mixed == "mixed_sum":
            return mixed_sum(outputs, weights)
        # The original's expression and summation order: sum(layer(x) * w for layer, w in zip(...)).
        return sum(out * w for out, w in zip(outputs, weights))

    def compute_node(self, target: int, nodes: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
        """Node `target` = sum over its incoming edges of the mixed edge (weights: the (6, 5) tensor)."""
        return sum(self.mixed_edge(e, nodes[source], weights[e])
                   for e, (source, t) in enumerate(nb201.EDGES) if t == target)

    def forward_path(self, x: torch.Tensor, index: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Run only op index[e] on each edge (see `Path`); returns node 3."""
        ops = [int(i) for i in index.tolist()]
        nodes = [x]
        for target in range(1, nb201.NUM_NODES):
            total: torch.Tensor | float = 0.0
            for e, (source, t) in enumerate(nb201.EDGES):
                if t != target:
                    continue
                a = ops[e]
                out = self.edges[e][a](nodes[source])
                if weights is not None:  # the original's order: sum over ops of w·op(x) (chosen) or w (others)
                    edge: torch.Tensor | float = 0.0
                    for o in range(nb201.NUM_OPS):
                        edge = edge + (weights[e, o] * out if o == a else weights[e, o])
                    out = edge  # type: ignore[assignment]
                total = total + out
            nodes.append(total)  # type: ignore[arg-type]
        return nodes[-1]

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Run the cell with (6, 5) architecture weights; returns node 3."""
        if self.uses_fused(x.device):
            return fused_cell_forward(self, x, weights, self._fused_plan, self.conv_grouping)
        nodes = [x]
        for target in range(1, nb201.NUM_NODES):
            nodes.append(self.compute_node(target, nodes, weights))
        return nodes[-1]

    def extra_repr(self) -> str:
        return f"inC={self.in_dim}, outC={self.out_dim}, mixed={self.mixed}, fused={_fused_str(self.fused)}"


class Supernet(WindowedInference, nn.Module):
    """NB201 DARTS supernet: one shared (6, 5) architecture tensor, mixed ops on every edge."""

    def __init__(self, num_outputs: int, in_channels: int = 3, C: int = 16, N: int = 5, topology: str = "point2d",
                 affine: bool = False, track_running_stats: bool = True, mixed: MixedSumImpl = "reference",
                 fused: bool | None = None, conv_grouping: ConvGrouping = "auto") -> None:
        super().__init__()
        if num_outputs < 1 or in_channels < 1:
            raise InputError(f"num_outputs and in_channels must be positive, got {num_outputs}, {in_channels}")
        if mixed not in ("reference", "mixed_sum"):
            raise InputError(f"mixed must be 'reference' (plain PyTorch) or 'mixed_sum' (nb360's op), got {mixed!r}")
        _check_fused(fused)
        dim, dense = topology_layout(topology)
        self.topology, self.dim, self.dense = topology, dim, dense
        self.C, self.N, self.in_channels, self.num_outputs = C, N, in_channels, num_outputs
        self.affine, self.track_running_stats = affine, track_running_stats
        self.stem = conv_bn_stem(in_channels, C, dim)
        self.cells = nn.ModuleList()
        C_prev = C
        for C_curr, reduction in stage_plan(C, N, dense):
            cell = (ResNetBasicblock(C_prev, C_curr, 2, True, True, dim) if reduction
                    else SearchCell(C_prev, C_curr, 1, affine, track_running_stats, dim, mixed, fused, conv_grouping))
            self.cells.append(cell)
            C_prev = C_curr
        self.lastact = nn.Sequential(batchnorm_cls(dim)(C_prev), nn.ReLU(inplace=False))
        self.global_pooling = None if dense else (nn.AdaptiveAvgPool2d(1) if dim == 2 else nn.AdaptiveAvgPool1d(1))
        self.classifier = nn.Linear(C_prev, num_outputs)
        self.alpha = nn.Parameter(1e-3 * torch.randn(nb201.NUM_EDGES, nb201.NUM_OPS))

    # ----- parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters: [α], one (6, 5) tensor shared by all cells."""
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except α (stem, cells, reduction blocks, head)."""
        return [p for name, p in self.named_parameters() if name != "alpha"]

    @contextlib.contextmanager
    def frozen_weights(self) -> Iterator[None]:
        """Weights' requires_grad off inside the block (an architecture step), restored on exit.

        Eager autograd and the fused op already skip the weight gradients of `backward(inputs=[alpha])`;
        a `torch.compile`'d graph cannot (AOTAutograd's backward returns every gradient its inputs
        require, whatever `inputs=` asks), so a compiled architecture step freezes the weights instead:
        Dynamo then compiles a second graph, once, without them.
        """
        weights = [p for p in self.weight_parameters() if p.requires_grad]
        for p in weights:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in weights:
                p.requires_grad_(True)

    def set_mixed(self, mixed: MixedSumImpl) -> None:
        """Switch every cell's mixed-edge implementation ('reference' or 'mixed_sum')."""
        if mixed not in ("reference", "mixed_sum"):
            raise InputError(f"mixed must be 'reference' or 'mixed_sum', got {mixed!r}")
        for cell in self.search_cells():
            cell.mixed = mixed

    def set_fused(self, fused: bool | None, conv_grouping: ConvGrouping | None = None) -> None:
        """Switch every cell between the fused kernels (True; None: where available) and the reference path (False)."""
        _check_fused(fused)
        if conv_grouping is not None:
            resolve_grouping(conv_grouping, torch.device("cpu"))
        for cell in self.search_cells():
            cell.fused = fused
            if conv_grouping is not None:
                cell.conv_grouping = conv_grouping

    def search_cells(self) -> list[SearchCell]:
        """The cells with mixed edges (reduction blocks excluded)."""
        return [c for c in self.cells if isinstance(c, SearchCell)]

    def arch_weights(self, tau: float = 1.0) -> torch.Tensor:
        """softmax(α / τ) over the operations of each edge: (6, 5)."""
        return torch.softmax(self.alpha / tau, dim=-1)

    # ----- forward
    def forward_features(self, x: torch.Tensor, weights: torch.Tensor | Path | None = None) -> torch.Tensor:
        """Features after the final BN + ReLU, with the given (or softmax(α)) architecture weights."""
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            want = "(N, C, H, W)" if self.dim == 2 else "(N, C, L)"
            raise InputError(f"Supernet expects a {want} batch with C={self.in_channels}, got shape {tuple(x.shape)}")
        if isinstance(weights, Path):
            return self._forward_path(x, weights)
        if weights is None:
            weights = self.arch_weights()
        elif weights.shape != (nb201.NUM_EDGES, nb201.NUM_OPS):
            raise InputError(f"architecture weights must have shape (6, 5), got {tuple(weights.shape)}")
        feature = self.stem(x)
        for cell in self.cells:
            feature = cell(feature, weights) if isinstance(cell, SearchCell) else cell(feature)
        return self.lastact(feature)

    def _forward_path(self, x: torch.Tensor, path: Path) -> torch.Tensor:
        cells = len(self.search_cells())
        if path.index.shape not in ((nb201.NUM_EDGES,), (cells, nb201.NUM_EDGES)):
            raise InputError(f"a path's op ids must have shape (6,) or ({cells}, 6), got {tuple(path.index.shape)}")
        feature = self.stem(x)
        k = 0
        for cell in self.cells:
            if isinstance(cell, SearchCell):
                feature = cell.forward_path(feature, path.row(k), path.weights)
                k += 1
            else:
                feature = cell(feature)
        return self.lastact(feature)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | Path | None = None) -> torch.Tensor:
        """Logits with architecture weights `weights` (default softmax(α)) or a `Path`: (N, out) or (N, out, H, W)."""
        return classify(self, self.forward_features(x, weights))

    # ----- discretisation
    def genotype(self, exclude_none: bool = False, weights: torch.Tensor | None = None) -> str:
        """The arch string with the argmax operation on each edge (of α, or of `weights`)."""
        scores = (self.alpha if weights is None else weights).detach().clone()
        if exclude_none:
            scores[:, nb201.OPS.index("none")] = float("-inf")
        return nb201.to_str(tuple(int(i) for i in scores.argmax(dim=-1)))

    def discretize(self, arch: nb201.Arch | None = None, exclude_none: bool = False) -> TinyNetwork:
        """A TinyNetwork for `arch` (default: the genotype) that inherits this supernet's weights."""
        arch = self.genotype(exclude_none) if arch is None else arch
        net = TinyNetwork(arch, self.num_outputs, self.in_channels, self.C, self.N, self.topology,
                          self.affine, self.track_running_stats).to(self.alpha.device, self.alpha.dtype)
        op_ids = nb201.op_ids(arch)
        state = {}
        for name, value in self.state_dict().items():
            if name == "alpha":
                continue
            parts = name.split(".")
            if parts[0] == "cells" and isinstance(self.cells[int(parts[1])], SearchCell):
                # cells.<k>.edges.<e>.<o>.rest -> cells.<k>.layers.<e>.rest for the chosen op o
                k, e, o, rest = parts[1], int(parts[3]), int(parts[4]), parts[5:]
                if o != op_ids[e]:
                    continue
                name = ".".join(["cells", k, "layers", str(e), *rest])
            state[name] = value
        net.load_state_dict(state, strict=True)  # copies: the two networks share no storage
        return net.train(self.training)

    def extra_repr(self) -> str:
        fused = self.search_cells()[0].fused if self.search_cells() else None
        return f"C={self.C}, N={self.N}, topology={self.topology}, affine={self.affine}, fused={_fused_str(fused)}"


def _check_fused(fused: bool | None) -> None:
    if fused not in (None, True, False):
        raise InputError(f"fused must be True, False or None (fused wherever nb360's kernels exist), got {fused!r}")
    if fused and not fused_kernels_available("cpu"):
        raise BuildError("fused=True but nb360's cell_node op is not registered: rebuild nb360 "
                         "(`pip install --no-build-isolation -e .`) or pass fused=False")


def _fused_str(fused: bool | None) -> str:
    return "auto" if fused is None else str(fused)
