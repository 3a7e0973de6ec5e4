"""The main job's tabular step: REA against random search on a precomputed table, compared on seed means."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..search.tabular.protocol import NB360

if TYPE_CHECKING:
    from . import MainJobConfig, Progress

# NAS-Bench-360's search rules (the search default, docs/search-protocols.md) with one deviation: the incumbent's
# final metric is its seed mean (NATS's is_random=False), where NAS-Bench-360's scripts read one random seed. Issue
# 19: on a multi-seed table the main job compares methods on seed means, so one seed's luck is not a method's result.
MAIN_JOB_PROTOCOL = replace(NB360, name="nb360-seed-mean", final_seed="mean")


def step_tabular(cfg: MainJobConfig, table_path: Path, out: Path, say: Progress) -> dict[str, Any]:
    from ..search.tabular import TabularProblem, run
    from ..search.tabular.output import save_result
    from ..table import Table

    table = Table.open(table_path)
    problem = TabularProblem.from_table(table)
    runs = next(r for r in table.runs if r.hp == problem.search_hp)
    costs = table.query_batch(problem.recorded, "train-time", -1, hp=problem.search_hp, task=problem.task,
                              missing="nan")
    # default budget: the simulated time of about 20 queries at the search fidelity
    budget = cfg.budget if cfg.budget is not None else float(20 * runs.epochs * np.nanmedian(costs))
    say(f"[2/5] tabular search on {table_path.name}: REA and random search, {cfg.repeats} repeats of "
        f"{budget:.0f} simulated seconds each")
    results, finals = {}, {}
    for method in ("rea", "rs"):
        result = run(method, problem, budget, repeats=cfg.repeats, seed=cfg.seed, protocol=MAIN_JOB_PROTOCOL)
        save_result(result, out / "tabular" / method)
        results[method] = result.summary()
        finals[method] = result.final()[2]
    best_index, best_value = table.best(problem.final_metric, hp=problem.final_hp, task=problem.final_task,
                                        mode=problem.final_mode)
    top = results["rea"]["most_found"][0]
    return {"table": str(table_path), "table_provenance": table.info()["provenance"], "budget_s": budget,
            "protocol": MAIN_JOB_PROTOCOL.name,
            "search_metric": problem.search_metric, "final_metric": problem.final_metric,
            "search_hp": problem.search_hp, "final_hp": problem.final_hp,
            "seeds": [int(s) for s in table.seeds(problem.final_hp, problem.final_task)],
            "archs_recorded": int(len(problem.recorded)), "seed_noise": _seed_noise(problem),
            "neighbours": _neighbour_density(problem),
            "comparison": compare_finals(finals["rea"], finals["rs"], problem.final_mode),
            "final_mode": problem.final_mode, "summaries": results,
            "optimum": {"arch": int(best_index), "value": float(best_value)},
            "found_arch": int(top["arch"]), "found_arch_str": top["arch_str"]}


def _neighbour_density(problem: Any) -> dict[str, float]:
    """How many recorded one-edge neighbours a recorded arch has: what REA's mutations can reach on a partial table."""
    n = problem.num_neighbours[problem.recorded]
    return {"mean": float(n.mean()), "none": float((n == 0).mean())}


def _seed_noise(problem: Any) -> dict[str, Any]:
    """Median and largest std over seeds of the final metric, across the recorded archs (None with one seed)."""
    values = problem.final_by_seed()[0][:, problem.recorded]  # (seeds, archs); cached by the problem
    seeds = values.shape[0]
    if seeds < 2:
        return {"seeds": seeds, "median_std": None, "max_std": None}
    std = np.nanstd(values, axis=0, ddof=1)
    return {"seeds": seeds, "median_std": float(np.nanmedian(std)), "max_std": float(np.nanmax(std))}


def compare_finals(a: np.ndarray, b: np.ndarray, mode: str) -> dict[str, Any]:
    """Is method a's final metric over repeats really better or worse than b's? Welch's t-test, in plain words."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    # Every repeat of a method often ends on the same arch (small tables): its variance is then exactly 0, not
    # the rounding of its mean that np.var / scipy's ttest_ind compute (and warn about as "catastrophic
    # cancellation"); so Welch's test is written out with exact zeros (equal to ttest_ind(equal_var=False) else).
    def mean_var(x: np.ndarray) -> tuple[float, float]:
        return (float(x[0]), 0.0) if np.ptp(x) == 0 else (float(x.mean()), float(x.var(ddof=1)))

    (ma, va), (mb, vb) = mean_var(a), mean_var(b)
    diff = ma - mb
    stderr = p = None
    if min(len(a), len(b)) > 1:
        sa, sb = va / len(a), vb / len(b)
        stderr = float(np.sqrt(sa + sb))
        if stderr == 0:
            p = 1.0 if diff == 0 else 0.0
        else:
            df = (sa + sb) ** 2 / (sa**2 / (len(a) - 1) + sb**2 / (len(b) - 1))
            p = float(2 * stats.t.sf(abs(diff) / stderr, df))
    better = diff > 0 if mode == "max" else diff < 0
    if p is None or not np.isfinite(p) or p >= 0.05:
        verdict = "no real difference"
    else:
        verdict = "REA better" if better else "random search better"
    return {"difference": diff, "stderr": stderr, "p_value": p, "verdict": verdict}


def comparison_text(tab: dict[str, Any]) -> str:
    """The table's seeds and fidelities, its seed noise, and whether REA and random search really differ."""
    c, noise = tab.get("comparison") or {}, tab.get("seed_noise") or {}
    facts = (f"The search queries `{tab['search_metric']}` at fidelity hp {tab.get('search_hp')} (one recorded seed "
             f"drawn per query, as NATS-Bench's `simulate_train_eval`); the final metric is the mean over the "
             f"{len(tab.get('seeds', []))} seeds recorded at hp {tab.get('final_hp')}, over "
             f"{tab.get('archs_recorded')} searchable archs.")
    if noise.get("median_std") is not None:
        facts += (f" Seed noise of the final metric: median std {noise['median_std']:.4f}, largest "
                  f"{noise['max_std']:.4f} over {noise['seeds']} seeds.")
    density = tab.get("neighbours")
    if density is not None and density["mean"] < 4:
        # REA mutates one edge; on a sparse table most children are not recorded and the search draws a random
        # recorded arch instead (problem.mutate_by_node), so REA cannot differ much from random search there
        facts += (f" The table is sparse: a searchable arch has on average {density['mean']:.2f} recorded one-edge "
                  f"neighbours of 24 ({density['none']:.0%} have none), so most of REA's mutations fall back to a "
                  "random recorded arch and REA is close to random search by construction; comparing them needs a "
                  "denser table (`--table`).")
    if not c or c.get("p_value") is None:
        return facts
    sign = "+" if c["difference"] >= 0 else "−"
    measured = (f"REA − random search = {sign}{abs(c['difference']):.4f} ± {c['stderr']:.4f} (standard error; Welch's "
                f"t-test p = {c['p_value']:.2g})")
    if c["verdict"] == "no real difference":
        return f"{facts} **No real difference between REA and random search on this table**: {measured}."
    return f"{facts} **{c['verdict']}**: {measured}."
