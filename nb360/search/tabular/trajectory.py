"""Query logs of vectorised tabular searches and the incumbent trajectories derived from them.

A search of R repeats records, query by query, each repeat's arch, value, fidelity (epoch) and
simulated cost. Two budget rules (`protocol.py`): NAS-Bench-360's and NATS's (`count_crossing=True`)
query while the time used is below the budget and count every query, so the one that crosses the
budget is counted and ends the repeat; NAS-Bench-201's `R_EA.py` (`count_crossing=False`) does not
count a query whose cost would take the repeat past its budget, and that query ends the repeat.
The incumbent after each query is the best search value so far; with `fidelity_aware`, the best
at the highest fidelity evaluated so far (hpbandster's rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import InputError
from .problem import TabularProblem


class QueryRecorder:
    """Counts lock-step queries of R repeats against their budgets and logs them column by column."""

    def __init__(self, problem: TabularProblem, repeats: int, budget: float | None, max_queries: int | None,
                 rng: np.random.Generator, progress: Callable[[float], None] | None = None,
                 count_crossing: bool = False, bounded: bool = True) -> None:
        if repeats < 1:
            raise InputError(f"repeats must be at least 1, got {repeats}")
        if budget is None and max_queries is None and bounded:
            raise InputError("give a budget in simulated seconds, a maximum number of queries, or both")
        if budget is not None and not (np.isfinite(budget) and budget > 0):
            raise InputError(f"the budget must be a positive number of simulated seconds, got {budget}")
        if max_queries is not None and max_queries < 1:
            raise InputError(f"max_queries must be at least 1, got {max_queries}")
        self.problem = problem
        self.rng = rng
        self.repeats = repeats
        self.budget = float(budget) if budget is not None else np.inf
        self.max_queries = max_queries
        self.count_crossing = count_crossing
        self.active = np.ones(repeats, dtype=bool)
        self.used = np.zeros(repeats)
        self.count = np.zeros(repeats, dtype=np.int64)
        self._progress = progress
        self._cols: dict[str, list[np.ndarray]] = {k: [] for k in ("arch", "value", "cost", "time", "epoch")}

    def query(self, archs: np.ndarray, epoch: int | None = None, mask: np.ndarray | None = None,
              force: bool = False) -> np.ndarray:
        """Query one arch per repeat (where `mask` and the repeat is active); returns scores, NaN where not counted.

        `force` queries and counts every repeat whatever its budget (NATS's REA initial population).
        """
        asking = (np.ones(self.repeats, dtype=bool) if force else self.active.copy()) if mask is None else (
            mask if force else self.active & mask)
        epoch = self.problem.search_epoch if epoch is None else int(epoch)
        archs = np.asarray(archs, dtype=np.int64)
        safe = np.where(asking, archs, self.problem.recorded[0])
        values, costs = self.problem.query(self.rng, safe, epoch)
        if force or self.count_crossing:
            counted = asking
        else:
            counted = asking & (self.used + costs <= self.budget)
            self.active &= ~(asking & ~counted)  # the query that would overrun ends the repeat
        self.used = np.where(counted, self.used + costs, self.used)
        if self.count_crossing:  # NATS: `while used < budget`, so the query reaching the budget is the last
            self.active &= self.used < self.budget
        self.count += counted
        if self.max_queries is not None:
            self.active &= self.count < self.max_queries
        if counted.any():
            self._cols["arch"].append(np.where(counted, archs, -1))
            self._cols["value"].append(np.where(counted, values, np.nan))
            self._cols["cost"].append(np.where(counted, costs, np.nan))
            self._cols["time"].append(np.where(counted, self.used, np.nan))
            self._cols["epoch"].append(np.where(counted, epoch, -1))
        if self._progress is not None:
            self._progress(self.fraction_done())
        return np.where(counted, self.problem.score(values), np.nan)

    def fraction_done(self) -> float:
        """Share of the total budget spent (finished repeats count in full)."""
        if np.isfinite(self.budget):
            spent = np.where(self.active, np.minimum(self.used / self.budget, 1.0), 1.0)
        else:
            spent = np.where(self.active, self.count / max(self.max_queries or 1, 1), 1.0)
        return float(spent.mean())

    def log(self) -> dict[str, np.ndarray]:
        """The query log as (R, Q) arrays, each repeat's counted queries packed to the left."""
        R = self.repeats
        if not self._cols["arch"]:
            raise InputError("the budget is smaller than the cost of a single query: no query was counted; raise "
                             "the budget")
        raw = {k: np.stack(v, axis=1) for k, v in self._cols.items()}
        counted = raw["arch"] >= 0
        order = np.argsort(~counted, axis=1, kind="stable")  # counted columns first, in time order
        packed = {k: np.take_along_axis(v, order, axis=1) for k, v in raw.items()}
        width = int(counted.sum(axis=1).max())
        packed = {k: v[:, :width] for k, v in packed.items()}
        packed["n_queries"] = counted.sum(axis=1)
        assert packed["arch"].shape[0] == R
        return packed


@dataclass
class TabularResult:
    """The outcome of a tabular search: query log, incumbents and the final architectures of every repeat."""

    method: str
    config: dict[str, Any]
    problem: dict[str, Any]
    archs: np.ndarray  # (R, Q) queried arch, -1 padding
    values: np.ndarray  # (R, Q) search value returned
    costs: np.ndarray  # (R, Q) simulated seconds charged
    times: np.ndarray  # (R, Q) cumulative simulated seconds after the query
    epochs: np.ndarray  # (R, Q) epoch of the search fidelity queried
    n_queries: np.ndarray  # (R,)
    incumbent_arch: np.ndarray  # (R, Q)
    incumbent_value: np.ndarray  # (R, Q) the incumbent's search value
    incumbent_final: np.ndarray  # (R, Q) the incumbent's final-fidelity metric
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def repeats(self) -> int:
        """Number of independent repeats."""
        return int(self.archs.shape[0])

    def final(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(arch, search value, final metric) of each repeat's last incumbent."""
        last = np.maximum(self.n_queries - 1, 0)
        rows = np.arange(self.repeats)
        return self.incumbent_arch[rows, last], self.incumbent_value[rows, last], self.incumbent_final[rows, last]

    def on_grid(self, grid: np.ndarray, what: str = "final") -> np.ndarray:
        """The incumbent's final metric (or search value) at each simulated time of `grid`: (R, G), NaN before the first query."""
        source = self.incumbent_final if what == "final" else self.incumbent_value
        out = np.full((self.repeats, len(grid)), np.nan)
        for r in range(self.repeats):
            n = int(self.n_queries[r])
            k = np.searchsorted(self.times[r, :n], grid, side="right") - 1
            ok = k >= 0
            out[r, ok] = source[r, k[ok]]
        return out

    def summary(self) -> dict[str, Any]:
        """Mean, std and quantiles of the final metric over repeats, and the query counts."""
        arch, value, final = self.final()
        unique, counts = np.unique(arch, return_counts=True)
        top = unique[np.argsort(-counts)[:5]]
        return {
            "method": self.method, "repeats": self.repeats, "final_metric": self.problem["final_metric"],
            "final_mean": float(np.mean(final)), "final_std": float(np.std(final)),
            "final_quantiles": {str(q): float(np.quantile(final, q)) for q in (0.0, 0.25, 0.5, 0.75, 1.0)},
            "search_value_mean": float(np.mean(value)),
            "queries_mean": float(np.mean(self.n_queries)), "queries_min": int(np.min(self.n_queries)),
            "queries_max": int(np.max(self.n_queries)),
            "time_used_mean": float(np.mean(self.times[np.arange(self.repeats), np.maximum(self.n_queries - 1, 0)])),
            "most_found": [{"arch": int(a), "arch_str": _arch_str(int(a)), "repeats": int(c)}
                           for a, c in zip(top, counts[np.argsort(-counts)[:5]])],
        }


def _arch_str(index: int) -> str:
    from ...space import nb201

    return nb201.arch_str(index)


def build_result(method: str, config: dict[str, Any], problem: TabularProblem, recorder: QueryRecorder,
                 fidelity_aware: bool = False, extras: dict[str, Any] | None = None,
                 final_seed: str = "mean") -> TabularResult:
    """Pack a recorder's log and compute the incumbent after every query.

    The incumbent's final metric is its seed mean (`final_seed="mean"`), or, as NAS-Bench-360's scripts
    read it (`get_more_info` with is_random=True), one seed drawn when the arch becomes the incumbent.
    """
    if final_seed not in ("mean", "random"):
        raise InputError(f"final_seed must be 'mean' or 'random', got {final_seed!r}")
    log = recorder.log()
    archs, values, epochs = log["arch"], log["value"], log["epoch"]
    R, Q = archs.shape
    score = problem.score(values)
    inc_arch = np.full((R, Q), -1, dtype=np.int64)
    inc_value = np.full((R, Q), np.nan)
    cur_arch = np.full(R, -1, dtype=np.int64)
    cur_score = np.full(R, -np.inf)
    cur_value = np.full(R, np.nan)
    cur_epoch = np.full(R, -1, dtype=np.int64)
    draws = recorder.rng.random((R, Q)) if final_seed == "random" else None
    cur_u = np.zeros(R)
    inc_u = np.zeros((R, Q))
    for q in range(Q):
        valid = archs[:, q] >= 0
        better = valid & (score[:, q] > cur_score)
        if fidelity_aware:  # a higher fidelity beats any lower one; ties on fidelity compare values
            better = valid & ((epochs[:, q] > cur_epoch) | ((epochs[:, q] == cur_epoch) & (score[:, q] > cur_score)))
        cur_arch = np.where(better, archs[:, q], cur_arch)
        cur_score = np.where(better, score[:, q], cur_score)
        cur_value = np.where(better, values[:, q], cur_value)
        cur_epoch = np.where(better, epochs[:, q], cur_epoch)
        if draws is not None:
            cur_u = np.where(better, draws[:, q], cur_u)
            inc_u[:, q] = cur_u
        inc_arch[:, q] = np.where(valid, cur_arch, -1)
        inc_value[:, q] = np.where(valid, cur_value, np.nan)
    if draws is None:
        inc_final = np.where(inc_arch >= 0, problem.final_values[np.maximum(inc_arch, 0)], np.nan)
    else:
        inc_final = problem.final_random_seed(inc_arch, inc_u)
    return TabularResult(method=method, config=config, problem=problem.describe(), archs=archs, values=values,
                         costs=log["cost"], times=log["time"], epochs=epochs, n_queries=log["n_queries"],
                         incumbent_arch=inc_arch, incumbent_value=inc_value, incumbent_final=inc_final,
                         extras=extras or {})
