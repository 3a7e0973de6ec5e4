"""E2RNAS's resource objectives: a differentiable expected size (or FLOPs) inside a constraint.

`P(p) = CostModel.expected(p)` is the parameter (or FLOP) count of the *evaluation* network
expected under the architecture weights p = softmax(α) — linear in p and exact for one-hot p
(`nb360.models.counting`; in the DARTS space `nb360.models.darts_counting`, with each edge weighted
by its expected number of kept copies). The objective is `constraint(P(p) / scale, target)` with the
reference's forms (search-methods.md §1.4, `architect.param_number` / `--constrain`):

- ``abs``:  |target - P/scale|            (HEAD code; the E2RNAS scripts' `--constrain abs`)
- ``min``:  max(1, target - P/scale)      (v1: pushes the size *up* only while it is below target)
- ``max``:  max(1, P/scale - target)      (pushes the size down only while it is above target)
- ``none``: P/scale

The floor of 1 in `min`/`max` is the reference's; the objective is then flat (zero gradient) once
the size is within one scale unit of the target.

`size_proxy="supernet"` uses E2RNAS's own proxy instead (`SupernetSizeProxy`, the HEAD code's
`architect.param_number`): the α-weighted op parameters of the *search supernet's* cells, each cell
weighted 3 (normal) or 1.5 (reduction), every edge counted (no two-of-n edge keep), with their
target `--constrain_min 3` (in units of 1e5) in the DARTS space (`AUTHORS_SIZE_TARGET`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...errors import InputError

AUTHORS_SIZE_TARGET = 3.0  # E2RNAS's --constrain_min in its published scripts (PC-DARTS/pcdarts_e2rnas.sh), units 1e5
AUTHORS_CELL_WEIGHTS = (3.0, 1.5)  # HEAD architect.param_number: normal cells x3, reduction cells x1.5


def constrained(value: torch.Tensor, target: float, form: str) -> torch.Tensor:
    """The constraint `form` applied to a scaled size `value` (see the module docstring)."""
    if form == "abs":
        return (target - value).abs()
    if form == "min":
        return torch.clamp(target - value, min=1.0)
    if form == "max":
        return torch.clamp(value - target, min=1.0)
    if form == "none":
        return value
    raise InputError(f"unknown size constraint {form!r}: choose abs, min, max or none")


@dataclass
class ResourceObjective:
    """A cost model with its scale, target and constraint form."""

    name: str  # "size" or "flops"
    cost: Any  # a CostModel (NB201) or DartsCostModel (nb360.models.darts_counting)
    scale: float
    target: float
    form: str

    @classmethod
    def build(cls, name: str, cost: Any, scale: float, target: float | None, form: str) -> ResourceObjective:
        """Default target: the midpoint of the smallest and largest cell choice, in units of `scale`."""
        low, high = cls.range(cost)
        if target is None:
            target = (low + high) / 2 / scale
        if not target >= 0:
            raise InputError(f"the {name} target must be non-negative, got {target}")
        return cls(name, cost, float(scale), float(target), form)

    @staticmethod
    def range(cost: Any) -> tuple[float, float]:
        """(smallest, largest) cost over all architectures (per-edge min and max: the table is separable)."""
        if hasattr(cost, "range"):  # a cost model that knows its space's rule (the DARTS space's two edges per node)
            return cost.range()
        table = cost.table
        return cost.base + float(table.min(dim=1).values.sum()), cost.base + float(table.max(dim=1).values.sum())

    def value(self, weights: Any) -> torch.Tensor:
        """Expected cost under the architecture weights ((6, 5), or DARTS MixWeights), in units of `scale`."""
        return self.cost.expected(weights) / self.scale

    def __call__(self, weights: Any) -> torch.Tensor:
        """The constrained objective."""
        return constrained(self.value(weights), self.target, self.form)


@dataclass(frozen=True)
class SupernetSizeProxy:
    """E2RNAS's size proxy: Σ_type k_type Σ_{e,o} p[type, e, o] · table[type, e, o] over the search supernet's cells.

    `table` sums op o's parameter count on edge e over the supernet's cells of each type ((2, 14, 8) in the
    DARTS space: the authors' u(C) with FactorizedReduce on reduction skip edges; (6, 5) for NB201, whose α
    is shared by every cell), `cell_weights` the authors' (3, 1.5) per type (None in NB201).
    """

    table: torch.Tensor
    cell_weights: tuple[float, ...] | None = None
    base: float = 0.0

    def _weighted(self) -> torch.Tensor:
        if self.cell_weights is None:
            return self.table
        k = torch.tensor(self.cell_weights, dtype=self.table.dtype).view(-1, *([1] * (self.table.dim() - 1)))
        return self.table * k

    def expected(self, weights: Any) -> torch.Tensor:
        """The proxy under the architecture weights ((6, 5) tensor or DARTS MixWeights), differentiable."""
        p = getattr(weights, "ops", weights)
        if tuple(p.shape) != tuple(self.table.shape):
            raise InputError(f"the size proxy takes architecture weights of shape {tuple(self.table.shape)}")
        return (p * self._weighted().to(device=p.device, dtype=p.dtype)).sum()

    def range(self) -> tuple[float, float]:
        """(smallest, largest) value over architectures (every edge counted: separable per edge)."""
        table = self._weighted()
        return float(table.min(dim=-1).values.sum()), float(table.max(dim=-1).values.sum())


def supernet_size_proxy(card: Any, space: str, config: Any) -> SupernetSizeProxy:
    """E2RNAS's proxy for the search supernet of `config` (C, layers / N) on `card`'s shape."""
    if space == "darts":
        from ...models.darts_counting import darts_cost_model

        cost = darts_cost_model(card.num_outputs, card.in_channels, card.topology, "params", C=config.C,
                                layers=config.layers)
        return SupernetSizeProxy(cost.table, AUTHORS_CELL_WEIGHTS)
    from ...models import build, cost_model

    skeleton = build(card, arch=0, C=config.C, N=config.N)
    return SupernetSizeProxy(cost_model(skeleton, "params").table.double())
