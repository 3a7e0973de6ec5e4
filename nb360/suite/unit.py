"""One unit of a suite: a method on a task with a seed, end to end (search → retrain → test), resumable.

    OUT/units/<method>/<task>/seed-<s>/search/     the search run (tabular or weight-sharing)
    OUT/units/<method>/<task>/seed-<s>/evaluate/   the retrain + test run (`nb360 evaluate`'s directory)
    OUT/units/<method>/<task>/seed-<s>/unit.json   written last: status, what was found, the test figures, times

A killed unit resumes where it stopped: the weight-sharing search from its last epoch's checkpoint,
the retrain from each epoch's checkpoint, ASHA from Ray Tune's experiment state; a tabular search
(seconds of simulated time) and XGBoost (per seed) start again.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

from ..errors import InputError, Nb360Error
from .methods import SuiteMethod, available_methods
from .spec import SuiteSpec

UNIT_FORMAT = "nb360-suite-unit/1"


def unit_dir(out: Path, method: str, task: str, seed: int) -> Path:
    """OUT/units/<method>/<task>/seed-<s>."""
    return Path(out) / "units" / method / task / f"seed-{seed}"


def read_unit(path: Path) -> dict[str, Any] | None:
    """A unit's unit.json, or None while it has not finished."""
    file = path / "unit.json"
    if not file.exists():
        return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # torn by a crash: the unit runs (resumes) again


def _write_unit(path: Path, payload: dict[str, Any]) -> None:
    from ..evaluate import write_json

    write_json(path / "unit.json", {"format": UNIT_FORMAT, **payload})


def _skip_reason(method: SuiteMethod, task: str, spec: SuiteSpec) -> str | None:
    """Why a method does not run on a task (recorded as skipped), or None."""
    if method.kind == "tabular" and _table_for(task, spec) is None:
        return (f"no NB201 table for {task}: pass --table {task}=PATH (an nb360 table: `nb360 table import` or "
                "`nb360 table build`)")
    if method.name == "xgboost":
        from ..evaluate.xgboost_baseline import TASKS

        if task not in TASKS:
            return "NAS-Bench-360 has no XGBoost result for this task ('did not fit on a single V100 GPU')"
    if method.kind == "baseline" and method.name == "wrn-asha":
        from ..evaluate.asha import SETTINGS

        if task not in SETTINGS:
            return "no NAS-Bench-360 ASHA tuning settings for this task"
    return None


def _table_for(task: str, spec: SuiteSpec) -> str | None:
    if task in spec.tables:
        return spec.tables[task]
    if task == "darcyflow":
        from ..table.embedded import embedded_table_path

        return str(embedded_table_path())
    return None


def _loader_options(spec: SuiteSpec, task: str) -> dict[str, Any]:
    return dict(spec.loader_options.get(task, {}))


def _tabular_search(method: SuiteMethod, task: str, seed: int, spec: SuiteSpec, out: Path) -> dict[str, Any]:
    """Search the task's table (one repeat, the unit's seed); the incumbent is the found cell."""
    import numpy as np

    from ..search.tabular import TabularProblem, check_budget
    from ..search.tabular import run as run_tabular
    from ..search.tabular.output import save_result
    from ..table import Table

    path = _table_for(task, spec)
    table = Table.open(path)
    problem = TabularProblem.from_table(table, task=task if task in table.tasks else None)
    budget = spec.tabular_budget
    if budget is None:  # the main job's rule: about 20 queries at the search fidelity
        runs = next(r for r in table.runs if r.hp == problem.search_hp and r.task == problem.task)
        costs = table.query_batch(problem.recorded, "train-time", -1, hp=problem.search_hp, task=problem.task,
                                  missing="nan")
        per_epoch = float(np.nanmedian(costs)) if np.isfinite(costs).any() else 0.0
        budget = float(20 * runs.epochs * per_epoch) or None
    options: dict[str, Any] = {} if budget else {"max_queries": 20}
    if budget:
        check_budget(problem, budget)
    result = run_tabular(method.base, problem, budget, repeats=1, seed=seed, **options)
    if out.exists():
        import shutil

        shutil.rmtree(out)  # a tabular search is rerun whole (seconds), never resumed
    save_result(result, out, plots=False, command=["nb360", "suite"])
    summary = result.summary()
    found = summary["most_found"][0]
    return {"run_dir": str(out), "table": str(path), "table_task": problem.task, "budget_s": budget,
            "queries": summary["queries_mean"], "search_metric": problem.search_metric,
            "table_final_metric": problem.final_metric, "table_final_value": summary["final_mean"],
            "arch": int(found["arch"]), "arch_str": found["arch_str"]}


def search_config(method: SuiteMethod, task: str, seed: int, spec: SuiteSpec) -> Any:
    """The weight-sharing search's settings: the method's reference ones, shortened where the suite says."""
    from ..search.supernet.config import default_config

    cells = {"N": spec.search_cells} if method.space == "nb201" else {"layers": spec.search_cells}
    return default_config(method.base, task, space=method.space, data_root=spec.data_root, seed=seed,
                          epochs=spec.search_epochs, C=spec.search_channels, batch_size=spec.search_batch_size,
                          max_steps=spec.search_max_steps, device=spec.device, compare_darts=False,
                          eval_attacks=False, loader_options=_loader_options(spec, task) or None, **cells)


def _supernet_search(method: SuiteMethod, task: str, seed: int, spec: SuiteSpec, out: Path,
                     progress: bool) -> dict[str, Any]:
    """Run (or resume) the weight-sharing search; the discretised architecture is the found one."""
    from ..search.supernet import run_search
    from ..search.supernet.engine import CHECKPOINT

    config = search_config(method, task, seed, spec)
    resume = (out / CHECKPOINT).exists()
    if out.exists() and not resume:
        import shutil

        shutil.rmtree(out)  # a search that died before its first checkpoint starts again
    result = run_search(config, out, resume=resume, progress=progress, plots=False)
    return {"run_dir": str(out), "space": method.space, "epochs": result.epochs_done, "genotype": result.genotype,
            "arch": result.arch_index, "one_shot": (result.evaluation or {}).get("scores")}


def _eval_spec(method: SuiteMethod, task: str, seed: int, spec: SuiteSpec, search: dict[str, Any] | None) -> Any:
    from ..evaluate import EvalSpec

    common = {"task": task, "data_root": spec.data_root, "seeds": (seed,), "device": spec.device,
              "loader_options": _loader_options(spec, task)}
    if method.kind == "baseline":
        options: dict[str, Any] = {}
        if method.name == "wrn-asha":
            options = {"trials": spec.asha_trials, "concurrency": spec.asha_concurrency, "threads": spec.threads}
            return EvalSpec(backbone="wrn-asha", epochs=spec.eval_epochs,
                            baseline_options={k: v for k, v in options.items() if v is not None}, **common)
        if method.name == "xgboost":
            options = {"rounds": spec.xgb_rounds, "threads": spec.threads}
            return EvalSpec(backbone="xgboost", baseline_options={k: v for k, v in options.items() if v is not None},
                            **common)
        return EvalSpec(backbone=method.base, epochs=spec.eval_epochs, **common)
    assert search is not None
    if method.space == "darts":  # a DARTS genotype: its evaluation network
        return EvalSpec(genotype=search["genotype"], epochs=spec.eval_epochs, channels=spec.eval_channels,
                        layers=spec.eval_cells, **common)
    return EvalSpec(arch=search["arch"], epochs=spec.eval_epochs, channels=spec.eval_channels,
                    cells=spec.eval_cells or 5, **common)


def run_unit(spec_dict: dict[str, Any], out: str, method_name: str, task: str, seed: int,
             progress: bool = False) -> dict[str, Any]:
    """Run (or resume, or read) one unit; return its unit.json. Failures are recorded, not raised."""
    spec = SuiteSpec.from_dict(spec_dict)
    path = unit_dir(Path(out), method_name, task, seed)
    done = read_unit(path)
    if done is not None and done.get("status") in ("done", "skipped"):
        return done
    method = available_methods()[method_name]
    path.mkdir(parents=True, exist_ok=True)
    from ..evaluate import write_json

    # when this run of the unit began (the Ray executor's --unit-timeout counts from it)
    write_json(path / "running.json", {"started": time.time(), "host": os.uname().nodename, "pid": os.getpid()})
    record: dict[str, Any] = {"method": method.name, "kind": method.kind, "task": task, "seed": seed,
                              "label": method.label, "published_row": method.published, "search": None,
                              "evaluate": None, "seconds": {}, "host": os.uname().nodename, "pid": os.getpid()}
    reason = _skip_reason(method, task, spec)
    if reason is not None:
        _write_unit(path, {**record, "status": "skipped", "reason": reason})
        return read_unit(path) or {}
    import torch

    torch.set_num_threads(spec.threads)
    start = time.perf_counter()
    try:
        if method.kind == "tabular":
            record["search"] = _tabular_search(method, task, seed, spec, path / "search")
        elif method.kind == "supernet":
            record["search"] = _supernet_search(method, task, seed, spec, path / "search", progress)
        record["seconds"]["search"] = time.perf_counter() - start
        from ..evaluate import evaluate

        t_eval = time.perf_counter()
        evaluation = evaluate(_eval_spec(method, task, seed, spec, record["search"]), path / "evaluate",
                              progress=progress, command=["nb360", "suite"])
        results = evaluation.results
        record["evaluate"] = {"run_dir": str(evaluation.run_dir), "reported": results["summary"]["reported"]["mean"],
                              "metric": results["metric"], "test": results["per_seed"][0]["test"],
                              "comparable": results["reference"]["comparable"], "data": results.get("data"),
                              "protocol": {k: results["protocol"].get(k) for k in ("epochs", "card_epochs",
                                                                                   "shortened", "changed")},
                              "params": results["model"].get("params")}
        record["seconds"]["evaluate"] = time.perf_counter() - t_eval
        record["seconds"]["total"] = time.perf_counter() - start
        _write_unit(path, {**record, "status": "done"})
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001  (recorded: one unit's failure must not stop the grid)
        record["seconds"]["total"] = time.perf_counter() - start
        user = isinstance(exc, Nb360Error)
        _write_unit(path, {**record, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                           "traceback": None if user else traceback.format_exc(limit=8)})
    return read_unit(path) or {}


def check_methods_fit(spec: SuiteSpec) -> None:
    """Refuse options that no chosen method reads, and settings a method refuses (a typo must not cost a grid)."""
    methods = available_methods()
    for name in spec.methods:
        if methods[name].kind == "supernet":
            for task in spec.tasks:
                try:
                    search_config(methods[name], task, spec.seeds[0], spec)
                except InputError as exc:
                    raise InputError(f"{name} on {task}: {exc}") from None
    kinds = {methods[m].kind for m in spec.methods}
    names = set(spec.methods)
    unused = []
    if "supernet" not in kinds:
        unused += [o for o in ("search_epochs", "search_channels", "search_cells", "search_batch_size",
                               "search_max_steps") if getattr(spec, o) is not None]
    if "wrn-asha" not in names:
        unused += [o for o in ("asha_trials", "asha_concurrency") if getattr(spec, o) is not None]
    if "xgboost" not in names and spec.xgb_rounds is not None:
        unused.append("xgb_rounds")
    if "tabular" not in kinds and spec.tabular_budget is not None:
        unused.append("tabular_budget")
    if unused:
        raise InputError(f"{', '.join('--' + o.replace('_', '-') for o in unused)} appl"
                         f"{'ies' if len(unused) == 1 else 'y'} to none of the chosen methods")
