"""Tabular search on an nb360 table with simulated time budgets, vectorised over repeats.

    from nb360.search.tabular import TabularProblem, run
    problem = TabularProblem.from_table("ninapro.h5")          # 12-epoch search, 200-epoch final metric
    result = run("rea", problem, budget=40, repeats=500, seed=0)
    result.summary()["final_mean"]

Imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import InputError
from .algorithms import hyperband, local_search, random_search, regularized_evolution, reinforce, successive_halving
from .problem import TabularProblem
from .trajectory import TabularResult

ALGORITHMS: dict[str, Callable[..., TabularResult]] = {
    "rs": random_search,
    "rea": regularized_evolution,
    "ls": local_search,
    "reinforce": reinforce,
    "hyperband": hyperband,
    "sh": successive_halving,
}

__all__ = ["ALGORITHMS", "TabularProblem", "TabularResult", "hyperband", "local_search", "random_search",
           "regularized_evolution", "reinforce", "run", "successive_halving"]


def run(method: str, problem: TabularProblem, budget: float | None, repeats: int = 1, seed: int = 0,
        **options: Any) -> TabularResult:
    """Run tabular search `method` (rs, rea, ls, reinforce, hyperband, sh) for `repeats` repeats."""
    try:
        fn = ALGORITHMS[method]
    except KeyError:
        raise InputError(f"unknown tabular search method {method!r}; choose one of {', '.join(ALGORITHMS)}") from None
    return fn(problem, budget, repeats, seed, **options)
