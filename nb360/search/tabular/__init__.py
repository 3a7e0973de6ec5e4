"""Tabular search on an nb360 table with simulated time budgets, vectorised over repeats.

    from nb360.search.tabular import TabularProblem, run
    problem = TabularProblem.from_table("ninapro.h5")          # 12-epoch search, 200-epoch final metric
    result = run("rea", problem, budget=40, repeats=500, seed=0)   # protocol="nb360" (default) or "nb201"
    result.summary()["final_mean"]

Imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import InputError
from .algorithms import local_search, random_search, regularized_evolution, reinforce
from .multifidelity import bohb, hyperband, successive_halving
from .problem import TabularProblem
from .protocol import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, get_protocol
from .trajectory import TabularResult

ALGORITHMS: dict[str, Callable[..., TabularResult]] = {
    "rs": random_search,
    "rea": regularized_evolution,
    "ls": local_search,
    "reinforce": reinforce,
    "hyperband": hyperband,
    "sh": successive_halving,
    "bohb": bohb,
}
MULTI_FIDELITY = ("hyperband", "sh", "bohb")

__all__ = ["ALGORITHMS", "DEFAULT_PROTOCOL", "MULTI_FIDELITY", "PROTOCOLS", "Protocol", "TabularProblem",
           "TabularResult", "bohb", "budget_bounds", "check_budget", "get_protocol", "hyperband", "local_search",
           "random_search", "regularized_evolution", "reinforce", "run", "successive_halving"]


def budget_bounds(method: str, protocol: str | Protocol | None = None) -> bool:
    """Whether the simulated budget stops `method` under `protocol` (not NAS-Bench-360's Hyperband / BOHB)."""
    return not (method in MULTI_FIDELITY and get_protocol(protocol).multi_fidelity_stop == "iterations")


def run(method: str, problem: TabularProblem, budget: float | None, repeats: int = 1, seed: int = 0,
        protocol: str | Protocol | None = None, **options: Any) -> TabularResult:
    """Run tabular search `method` (rs, rea, ls, reinforce, hyperband, sh, bohb) for `repeats` repeats under
    `protocol` (nb360, the default, or nb201)."""
    try:
        fn = ALGORITHMS[method]
    except KeyError:
        raise InputError(f"unknown tabular search method {method!r}; choose one of {', '.join(ALGORITHMS)}") from None
    proto = get_protocol(protocol)
    if budget is not None and options.get("max_queries") is None and budget_bounds(method, proto):
        check_budget(problem, budget)
    return fn(problem, budget, repeats, seed, protocol=proto, **options)


# Budgets worth more queries than this many times the recorded architectures (and than
# MIN_QUERY_LIMIT, for small tables) only re-query known cells, and their histories grow without
# bound (1e9 s on the embedded table: > 8 GB after 10 min).
MAX_QUERIES_PER_ARCH = 20
MIN_QUERY_LIMIT = 100_000


def check_budget(problem: TabularProblem, budget: float) -> None:
    """Refuse a simulated budget far beyond what exhausts the table, naming the largest sensible one."""
    import numpy as np

    per_epoch = problem.table.query_batch(problem.recorded, "train-time", -1, hp=problem.search_hp,
                                          task=problem.task, missing="nan")
    if not np.isfinite(per_epoch).any():
        return  # no recorded times: every query is free, only --max-queries bounds the search
    per_query = float(np.nanmedian(per_epoch)) * (problem.search_epoch + 1)
    limit = max(MAX_QUERIES_PER_ARCH * len(problem.recorded), MIN_QUERY_LIMIT)
    if per_query > 0 and budget / per_query > limit:
        raise InputError(f"--budget {budget:g} s is about {budget / per_query:,.0f} queries per repeat (median "
                         f"{per_query:.3g} s per query), over {limit:,} for a table of {len(problem.recorded):,} "
                         f"architectures: use a budget up to {limit * per_query:,.0f} s, or bound the search with "
                         "--max-queries")
