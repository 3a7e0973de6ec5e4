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
