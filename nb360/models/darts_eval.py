"""The DARTS evaluation network of a genotype, for 2D point, 2D dense and 1D point tasks.

As DARTS's `NetworkCIFAR` (quark0/darts `cnn/model.py`) and NAS-Bench-360's variants of it
(`darts/gaea/eval`, `darts/gaea-grid/model_eval.py`, `darts_1d/gaea/eval/model.py`):

- stem: Conv 3×3 (in_channels → 3C, no bias) + BN;
- `layers` cells; point tasks: reduction cells at layers//3 and 2·layers//3 double the channels
  and halve the spatial size, the cell after a reduction preprocesses its first input with
  FactorizedReduce; each cell's output is the concatenation of its nodes (`concat`, 4·C channels);
- point tasks: global average pooling + Linear; dense tasks (NAS-Bench-360's
  `DiscretizedNetwork`): no reductions and no channel growth, a per-pixel Linear head, and
  `forward_window` for large maps; 1D tasks: the same with Conv1d / BatchNorm1d;
- drop-path (`drop_path_prob`, set per epoch by the training protocol) on every op output except
  the identity, in training only;
- auxiliary head (`auxiliary=True`, point tasks) after cell 2·layers//3: in training `forward`
  returns `(logits, aux_logits)`, in evaluation only the logits. DARTS's head assumes an 8×8 map
  (AvgPool 5, stride 3 → 2×2); on other sizes it average-pools adaptively to 2×2 (2 positions in
  1D), with the same layers and parameters.

`affine=False, search_ops=True` builds the same network with the search network's operations
(non-affine BN, BN after pooling): the discretised supernet with inherited weights.
Module names follow DARTS (`cells.<k>._ops.<i>`, `auxiliary_head.features`), so DARTS state dicts load.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..ops.cells import conv_bn_stem
from ..ops.darts_ops import FactorizedReduce, Identity, ReLUConvBN, drop_path, make_op
from ..space import darts
from .dense import WindowedInference, topology_layout
from .nb201 import classify

STEM_MULTIPLIER = 3


def cell_plan(layers: int, dense: bool) -> list[tuple[int, bool, bool]]:
    """(channel multiple of C, reduction, reduction_prev) per cell: DARTS's reductions at layers//3 and 2·layers//3."""
    if layers < 1:
        raise InputError(f"a DARTS network needs at least 1 cell, got layers={layers}")
    plan, mult, reduction_prev = [], 1, False
    for i in range(layers):
        reduction = (not dense) and i in (layers // 3, 2 * layers // 3)
        if reduction:
            mult *= 2
        plan.append((mult, reduction, reduction_prev))
        reduction_prev = reduction
    return plan


class EvalCell(nn.Module):
    """A cell with the genotype's operations: node i sums its two (op, input) pairs; output = concat of nodes."""

    def __init__(self, genotype: darts.Genotype, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool, affine: bool = True, dim: int = 2, search_ops: bool = False) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(C_prev_prev, C, affine, dim) if reduction_prev
                            else ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine, dim))
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine, dim)
        kind = "reduce" if reduction else "normal"
        pairs, concat = genotype.cell(kind), genotype.concat(kind)
        self._ops = nn.ModuleList(
            make_op(name, C, 2 if reduction and index < darts.NUM_INPUT_NODES else 1, affine, dim, search_ops)
            for name, index in pairs)
        self._indices = tuple(index for _name, index in pairs)
        self._concat = tuple(concat)
        self._steps = len(pairs) // 2
        self.multiplier = len(concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        """The cell's output from the two previous cells' outputs."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self._steps):
            h = []
            for k in (2 * i, 2 * i + 1):
                op = self._ops[k]
                out = op(states[self._indices[k]])
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    out = drop_path(out, drop_prob)
                h.append(out)
            states.append(h[0] + h[1])
        return torch.cat([states[i] for i in self._concat], dim=1)


class _AuxPool(nn.Module):
    """DARTS's AvgPool(5, stride 3) on an 8×8 map, else adaptive average pooling to 2×2 (2 in 1D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dim == 2 and tuple(x.shape[-2:]) == (8, 8):
            return F.avg_pool2d(x, 5, stride=3, padding=0, count_include_pad=False)
        return F.adaptive_avg_pool2d(x, 2) if self.dim == 2 else F.adaptive_avg_pool1d(x, 2)


class AuxiliaryHead(nn.Module):
    """DARTS's AuxiliaryHeadCIFAR: ReLU, pool to 2×2, 1×1 conv 128 + BN + ReLU, 2×2 conv 768 + BN + ReLU, Linear."""

    def __init__(self, C: int, num_outputs: int, dim: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if dim == 2 else nn.Conv1d
        bn = nn.BatchNorm2d if dim == 2 else nn.BatchNorm1d
        self.features = nn.Sequential(
            nn.ReLU(inplace=False), _AuxPool(dim),
            conv(C, 128, 1, bias=False), bn(128), nn.ReLU(inplace=False),
            conv(128, 768, 2, bias=False), bn(768), nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Auxiliary logits (N, num_outputs)."""
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(WindowedInference, nn.Module):
    """The DARTS network of one genotype for one task shape (see the module docstring)."""

    def __init__(self, genotype: darts.GenotypeLike, num_outputs: int, in_channels: int = 3, C: int = 36,
                 layers: int = 20, topology: str = "point2d", auxiliary: bool = False, drop_path_prob: float = 0.0,
                 affine: bool = True, search_ops: bool = False) -> None:
        super().__init__()
        if num_outputs < 1 or in_channels < 1 or C < 1:
            raise InputError(f"num_outputs, in_channels and C must be positive, got {num_outputs}, {in_channels}, {C}")
        if C % 2:
            raise InputError(f"DARTS networks need an even C (FactorizedReduce halves it), got C={C}")
        dim, dense = topology_layout(topology)
        if auxiliary and dense:
            raise InputError("the auxiliary head is defined for point tasks (DARTS, CIFAR); dense tasks train "
                             "without it")
        if not 0.0 <= drop_path_prob < 1.0:
            raise InputError(f"drop_path_prob must be in [0, 1), got {drop_path_prob}")
        self.genotype = darts.resolve(genotype)
        self.topology, self.dim, self.dense = topology, dim, dense
        self.C, self.layers, self.in_channels, self.num_outputs = C, layers, in_channels, num_outputs
        self.auxiliary, self.drop_path_prob = auxiliary, float(drop_path_prob)
        C_stem = STEM_MULTIPLIER * C
        self.stem = conv_bn_stem(in_channels, C_stem, dim)
        self.cells = nn.ModuleList()
        C_prev_prev, C_prev = C_stem, C_stem
        self.aux_position = 2 * layers // 3
        C_aux = None
        for i, (mult, reduction, reduction_prev) in enumerate(cell_plan(layers, dense)):
            cell = EvalCell(self.genotype, C_prev_prev, C_prev, mult * C, reduction, reduction_prev, affine, dim,
                            search_ops)
            self.cells.append(cell)
            C_prev_prev, C_prev = C_prev, cell.multiplier * mult * C
            if i == self.aux_position:
                C_aux = C_prev
        if auxiliary:
            assert C_aux is not None
            self.auxiliary_head = AuxiliaryHead(C_aux, num_outputs, dim)
        self.global_pooling = None if dense else (nn.AdaptiveAvgPool2d(1) if dim == 2 else nn.AdaptiveAvgPool1d(1))
        self.classifier = nn.Linear(C_prev, num_outputs)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            want = "(N, C, H, W)" if self.dim == 2 else "(N, C, L)"
            raise InputError(f"{type(self).__name__} expects a {want} batch with C={self.in_channels}, got shape "
                             f"{tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> Any:
        """Logits ((N, out) or (N, out, H, W)); in training with the auxiliary head, (logits, aux_logits)."""
        self._check(x)
        s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_position and self.auxiliary and self.training:
                aux = self.auxiliary_head(s1)
        logits = classify(self, s1)
        return (logits, aux) if aux is not None else logits

    def extra_repr(self) -> str:
        return (f"C={self.C}, layers={self.layers}, topology={self.topology}, auxiliary={self.auxiliary}, "
                f"genotype={darts.to_str(self.genotype)}")


def count_parameters_darts(model: nn.Module) -> int:
    """Parameters without the auxiliary head: DARTS's `utils.count_parameters_in_MB` convention (× 1e6)."""
    return sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name)
