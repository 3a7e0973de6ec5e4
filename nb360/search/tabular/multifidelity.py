"""Multi-fidelity search on a table, vectorised over repeats: Hyperband, successive halving and BOHB.

All three run hpbandster's brackets (Li et al. 2018; Falkner et al. 2018) over the epochs of the
search fidelity, as NATS's and NAS-Bench-360's `hyperband.py` / `bohb.py` drive hpbandster:
budgets `max·η^-k` between `min_budget` and `max_budget` epochs (η = 3, 1..12 epochs: 1.33, 4,
12); each evaluation a fresh `simulate_train_eval(iepoch=int(budget)-1, hp='12')`, charged its
simulated time. Iteration i runs bracket s = s_max - (i mod (s_max+1)) with
n0 = ⌊(s_max+1)/(s+1)⌋·η^s configurations, keeping the best ⌊n_k/η⌋ per rung (hpbandster's
`HyperBand.get_next_iteration`, `SuccessiveHalving._advance_to_next_stage`); successive halving
repeats the most exploratory bracket. With one worker (as both scripts run hpbandster) everything
is sequential: stage-0 configurations are sampled one at a time, each after the previous result
was registered, which matters to BOHB's model.

Protocols (`protocol.py`): nb360 runs a fixed 300 iterations whatever the time used and returns the
best value over every query at every fidelity; nb201 stops at the simulated budget and returns the
best at the highest fidelity evaluated (hpbandster's incumbent). Configurations: uniform
(Hyperband, SH) or BOHB's KDE model (`bohb.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import InputError
from .algorithms import Progress, _recorder, finish
from .bohb import BohbModel
from .problem import TabularProblem
from .protocol import Protocol, get_protocol
from .trajectory import QueryRecorder, TabularResult

# sample(rng) -> one arch per repeat; observe(level, archs, scores) after each query
Sampler = Callable[[np.random.Generator], np.ndarray]
Observer = Callable[[int, np.ndarray, np.ndarray], None]


def _brackets(problem: TabularProblem, rec: QueryRecorder, proto: Protocol, budgets: np.ndarray, epochs: np.ndarray,
              eta: float, successive_halving: bool, iterations: int | None, sample: Sampler,
              observe: Observer | None, progress: Progress | None) -> int:
    """Run hpbandster's iterations until `iterations` (or every repeat's budget) is spent; returns the count."""
    levels = len(budgets)
    rows = np.arange(rec.repeats)
    iteration = 0
    while rec.active.any() and (iterations is None or iteration < iterations):
        s = levels - 1 if successive_halving else levels - 1 - (iteration % levels)
        n0 = int(np.floor(levels / (s + 1)) * eta ** s)
        sizes = [max(int(n0 * eta ** (-k)), 1) for k in range(s + 1)]
        first = levels - s - 1  # level of the bracket's first rung
        configs = np.zeros((rec.repeats, sizes[0]), dtype=np.int64)
        for k, n in enumerate(sizes):
            level = first + k
            scores = np.full((rec.repeats, n), -np.inf)
            for j in range(n):
                if k == 0:  # sampled lazily, after the previous result was registered (BOHB's model sees it)
                    configs[:, j] = sample(rec.rng)
                got = rec.query(configs[:, j], epoch=int(epochs[level]))
                if observe is not None:
                    observe(level, configs[:, j], got)
                scores[:, j] = np.where(np.isnan(got), -np.inf, got)
            if k + 1 < len(sizes):  # promote the best sizes[k+1] (stable: earlier configs win ties)
                keep = np.argsort(-scores, axis=1, kind="stable")[:, :sizes[k + 1]]
                if proto.promotion_order == "sampling":
                    keep = np.sort(keep, axis=1)
                configs = configs[rows[:, None], keep]
            if not rec.active.any():
                break
        iteration += 1
        if progress is not None and iterations is not None:
            progress(iteration / iterations)
    return iteration


def _run(method: str, problem: TabularProblem, budget: float | None, repeats: int, seed: int,
         protocol: str | Protocol | None, min_budget: float, max_budget: float | None, eta: float,
         successive_halving: bool, iterations: int | None, max_queries: int | None, progress: Progress | None,
         bohb: dict[str, Any] | None) -> TabularResult:
    proto = get_protocol(protocol)
    max_budget = float(problem.search_epochs if max_budget is None else max_budget)
    budgets, epochs = problem.fidelity_epochs(float(min_budget), max_budget, float(eta))
    by_iterations = proto.multi_fidelity_stop == "iterations"
    if iterations is None and by_iterations:
        iterations = proto.multi_fidelity_iterations
    if iterations is not None and iterations < 1:
        raise InputError(f"iterations must be at least 1, got {iterations}")
    # nb360: the time budget stops nothing (NAS-Bench-360 runs hpbandster for n_iters iterations)
    rec = _recorder(problem, repeats, None if by_iterations else budget, max_queries, seed,
                    None if by_iterations else progress, proto, bounded=not by_iterations)
    model = None
    if bohb is not None:
        model = BohbModel(repeats, len(budgets), **bohb)

        def sample(rng: np.random.Generator) -> np.ndarray:
            return problem.recorded_or_random(rng, problem.archs_from_ops(model.sample(rng)))

        def observe(level: int, archs: np.ndarray, scores: np.ndarray) -> None:
            model.observe(level, problem.op_ids[archs], -scores)  # hpbandster minimises a loss
    else:
        def sample(rng: np.random.Generator) -> np.ndarray:
            return problem.random_archs(rng, repeats)

        observe = None  # type: ignore[assignment]
    done = _brackets(problem, rec, proto, budgets, epochs, float(eta), successive_halving, iterations, sample,
                     observe, progress)
    config = {"budget": budget, "repeats": repeats, "seed": seed, "min_budget": min_budget, "max_budget": max_budget,
              "eta": eta, "budgets": budgets.tolist(), "epochs": epochs.tolist(), "max_queries": max_queries,
              "iterations": iterations, "iterations_run": done,
              "stops": "after the iterations (the budget is not a stopping rule)" if by_iterations
              else "at the budget"}
    if bohb is not None:
        config["bohb"] = dict(bohb)
    fidelity_aware = proto.multi_fidelity_incumbent == "highest-fidelity"
    return finish(method, config, problem, rec, proto, fidelity_aware=fidelity_aware)


def hyperband(problem: TabularProblem, budget: float | None, repeats: int = 1, seed: int = 0, *,
              protocol: str | Protocol | None = None, min_budget: float = 1.0, max_budget: float | None = None,
              eta: float = 3.0, iterations: int | None = None, successive_halving: bool = False,
              max_queries: int | None = None, progress: Progress | None = None) -> TabularResult:
    """Hyperband (or successive halving) over the epochs of the search fidelity, with random configurations."""
    method = "sh" if successive_halving else "hyperband"
    return _run(method, problem, budget, repeats, seed, protocol, min_budget, max_budget, eta, successive_halving,
                iterations, max_queries, progress, None)


def successive_halving(problem: TabularProblem, budget: float | None, repeats: int = 1, seed: int = 0,
                       **options: Any) -> TabularResult:
    """Successive halving: Hyperband's most exploratory bracket, repeated."""
    return hyperband(problem, budget, repeats, seed, successive_halving=True, **options)


def bohb(problem: TabularProblem, budget: float | None, repeats: int = 1, seed: int = 0, *,
         protocol: str | Protocol | None = None, min_budget: float = 1.0, max_budget: float | None = None,
         eta: float = 3.0, iterations: int | None = None, num_samples: int = 4, random_fraction: float = 0.0,
         bandwidth_factor: float = 3.0, min_bandwidth: float = 0.3, top_n_percent: int = 15,
         max_queries: int | None = None, progress: Progress | None = None) -> TabularResult:
    """BOHB: Hyperband's brackets with configurations proposed by a TPE-style KDE model (`bohb.py`).

    Defaults are NAS-Bench-360's and NATS's `bohb.py`: num_samples 4, random_fraction 0.0,
    bandwidth_factor 3 (`algo.sh`, `run-all.sh`), min_bandwidth 0.3 (the script's default), η 3,
    budgets 1..12 epochs; hpbandster's top_n_percent 15.
    """
    options = {"num_samples": num_samples, "random_fraction": random_fraction, "bandwidth_factor": bandwidth_factor,
               "min_bandwidth": min_bandwidth, "top_n_percent": top_n_percent}
    return _run("bohb", problem, budget, repeats, seed, protocol, min_budget, max_budget, eta, False, iterations,
                max_queries, progress, options)
