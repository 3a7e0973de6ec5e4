"""Run directories of tabular searches: config, per-query log, trajectories, genotypes, summary and plot."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ...space import nb201
from .trajectory import TabularResult

QUERY_COLUMNS = ("repeat", "query", "time", "cost", "epoch", "arch", "value", "incumbent_arch", "incumbent_value",
                 "incumbent_final")


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def time_grid(results: list[TabularResult], points: int = 200) -> np.ndarray:
    """A common simulated-time grid from 0 to the largest time any repeat used."""
    end = max(float(np.nanmax(r.times)) for r in results)
    return np.linspace(0.0, end, points)


def write_queries(result: TabularResult, path: Path) -> None:
    """Every counted query of every repeat as CSV (one row per query, in time order per repeat)."""
    R, Q = result.archs.shape
    mask = np.arange(Q)[None, :] < result.n_queries[:, None]
    rep, q = np.nonzero(mask)
    cols = [rep, q, result.times[mask], result.costs[mask], result.epochs[mask], result.archs[mask],
            result.values[mask], result.incumbent_arch[mask], result.incumbent_value[mask],
            result.incumbent_final[mask]]
    table = np.column_stack([c.astype(np.float64) for c in cols])
    fmt = ["%d", "%d", "%.6f", "%.6f", "%d", "%d", "%.8g", "%d", "%.8g", "%.8g"]
    np.savetxt(path, table, fmt=fmt, delimiter=",", header=",".join(QUERY_COLUMNS), comments="")


def save_result(result: TabularResult, run_dir: str | os.PathLike, *, plots: bool = True,
                command: list[str] | None = None) -> list[str]:
    """Write the run directory of a tabular search; return the files written (relative names)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    from ... import __version__

    config = {"method": result.method, **result.config, "problem": result.problem, "nb360_version": __version__}
    if command is not None:
        config["command"] = command
    _write_json(run_dir / "config.json", config)
    write_queries(result, run_dir / "queries.csv")
    arch, value, final = result.final()
    _write_json(run_dir / "genotype.json", {
        "per_repeat": [{"repeat": r, "arch": int(a), "arch_str": nb201.arch_str(int(a)), "search_value": float(v),
                        "final": float(f)} for r, (a, v, f) in enumerate(zip(arch, value, final))],
        "most_found": result.summary()["most_found"],
    })
    grid = time_grid([result])
    values = result.on_grid(grid)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stats = np.column_stack([grid, np.nanmean(values, 0), np.nanstd(values, 0),
                                     *(np.nanquantile(values, q, 0) for q in (0.25, 0.5, 0.75)),
                                     (~np.isnan(values)).sum(0)])
    np.savetxt(run_dir / "trajectory.csv", stats, fmt="%.8g", delimiter=",", comments="",
               header="time,mean,std,q25,median,q75,repeats_started")
    np.savez_compressed(run_dir / "trajectories.npz", archs=result.archs, values=result.values, costs=result.costs,
                        times=result.times, epochs=result.epochs, n_queries=result.n_queries,
                        incumbent_arch=result.incumbent_arch, incumbent_value=result.incumbent_value,
                        incumbent_final=result.incumbent_final)
    summary = result.summary()
    _write_json(run_dir / "summary.json", summary)
    files = ["config.json", "queries.csv", "genotype.json", "trajectory.csv", "trajectories.npz", "summary.json"]
    if plots:
        from ..plots import plot_trajectories

        (run_dir / "plots").mkdir(exist_ok=True)
        p = result.problem
        plot_trajectories([{"label": result.method, "grid": grid, "values": values}], run_dir / "plots" /
                          "trajectory.png", ylabel=f"{p['final_metric']} (hp {p['final_hp']}) of the incumbent",
                          title=f"{result.method} on {p['task']}: search on hp {p['search_hp']}, "
                                f"{result.repeats} repeats")
        files.append("plots/trajectory.png")
    return files


COMPARISON_COLUMNS = ("method", "protocol", "repeats", "final_metric", "final_mean", "final_std", "final_sem",
                      "final_median", "queries_mean", "time_used_mean", "stops")


def comparison_rows(results: list[TabularResult]) -> list[dict[str, Any]]:
    """One row per method: the final metric's mean, std, standard error and median over repeats, queries, time."""
    rows = []
    for result in results:
        s = result.summary()
        rows.append({"method": result.method, "protocol": result.config.get("protocol"), "repeats": result.repeats,
                     "final_metric": s["final_metric"], "final_mean": s["final_mean"], "final_std": s["final_std"],
                     "final_sem": s["final_std"] / np.sqrt(max(result.repeats - 1, 1)),
                     "final_median": s["final_quantiles"]["0.5"], "queries_mean": s["queries_mean"],
                     "time_used_mean": s["time_used_mean"],
                     "stops": result.config.get("stops", "at the budget")})
    return rows


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table (NAS-Bench-360's mean ± std over repeats)."""
    lines = ["| method | protocol | repeats | final metric, mean ± std (± s.e.) | median | queries per repeat | "
             "simulated s used | stops |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['protocol']} | {r['repeats']} | {r['final_mean']:.4f} ± "
                     f"{r['final_std']:.4f} (± {r['final_sem']:.4f}) | {r['final_median']:.4f} | "
                     f"{r['queries_mean']:.1f} | {r['time_used_mean']:.1f} | {r['stops']} |")
    return "\n".join(lines)


def save_comparison(results: list[TabularResult], run_dir: str | os.PathLike, *, budget: float | None,
                    plots: bool = True) -> list[str]:
    """Every method's trajectory in one table and one plot (mean ± std of the incumbent's final metric against
    simulated time, NAS-Bench-360's figure); returns the files written."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = comparison_rows(results)
    with open(run_dir / "comparison.csv", "w", encoding="utf-8") as f:
        f.write(",".join(COMPARISON_COLUMNS) + "\n")
        for r in rows:
            f.write(",".join(f"{r[c]:.8g}" if isinstance(r[c], float) else f'"{r[c]}"' if c == "stops" else str(r[c])
                             for c in COMPARISON_COLUMNS) + "\n")
    (run_dir / "comparison.md").write_text(comparison_markdown(rows) + "\n", encoding="utf-8")
    grid = time_grid(results)
    curves = []
    for r in results:  # a method's curve ends where its last repeat ended (no line past the time it ran)
        values = r.on_grid(grid)
        values[:, grid > np.nanmax(r.times)] = np.nan
        curves.append({"label": r.method, "grid": grid, "values": values})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        columns = [grid] + [f(c["values"], axis=0) for c in curves for f in (np.nanmean, np.nanstd)]
    header = ",".join(["time"] + [f"{c['label']}_{k}" for c in curves for k in ("mean", "std")])
    np.savetxt(run_dir / "trajectories.csv", np.column_stack(columns), fmt="%.8g", delimiter=",", header=header,
               comments="")
    _write_json(run_dir / "summary.json", {"budget": budget, "methods": rows})
    files = ["comparison.csv", "comparison.md", "trajectories.csv", "summary.json"]
    if plots:
        from ..plots import plot_trajectories

        (run_dir / "plots").mkdir(exist_ok=True)
        p = results[0].problem
        unbounded = [r.method for r in results if not r.config.get("stops", "at the budget").startswith("at")]
        note = (f"{', '.join(unbounded)}: a fixed number of iterations whatever the time used (NAS-Bench-360's rule), "
                "so their curves run past the budget" if unbounded else "")
        plot_trajectories(curves, run_dir / "plots" / "comparison.png", band="std", budget=budget, note=note,
                          ylabel=f"{p['final_metric']} (hp {p['final_hp']}) of the incumbent",
                          title=f"{p['task']}: search on hp {p['search_hp']}, protocol "
                                f"{results[0].config.get('protocol')}, mean ± std over repeats")
        files.append("plots/comparison.png")
    return files
