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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...errors import InputError


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
