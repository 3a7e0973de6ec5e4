"""The benchmark's grid: methods × tasks × seeds, end to end (search → retrain → test), resumable per unit.

    from nb360.suite import SuiteSpec, run_suite
    spec = SuiteSpec(methods=("rea", "gaea", "wrn", "wrn-asha", "xgboost"), tasks=("ninapro", "darcyflow", "ecg"),
                     seeds=(0, 1), data_root="data", eval_epochs=2, search_epochs=1)
    summary = run_suite(spec, "runs/suite")          # then: nb360 report runs/suite

A suite directory holds suite.json (the spec; a rerun must keep every setting that decides the
numbers), one directory per unit (`nb360.suite.unit`: search/, evaluate/, unit.json) and results.json
(every unit and the methods × tasks table, `nb360.suite.collect`). Units run in this process, in
local worker processes, or one per Ray task (`nb360.suite.executors`). Methods come from nb360's
registries (`nb360.suite.methods`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError
from .collect import collect, read_suite
from .methods import SuiteMethod, available_methods, resolve
from .spec import SUITE_FORMAT, SuiteSpec
from .unit import check_methods_fit, read_unit, run_unit, unit_dir

__all__ = ["SuiteMethod", "SuiteSpec", "available_methods", "collect", "read_suite", "resolve", "run_suite",
           "run_unit", "unit_dir"]

Say = Callable[[str], None]


def _describe(unit: dict[str, Any]) -> str:
    head = f"{unit['method']} × {unit['task']} × seed {unit['seed']}"
    if unit.get("status") == "skipped":
        return f"{head}: skipped ({unit.get('reason')})"
    if unit.get("status") != "done":
        return f"{head}: FAILED ({unit.get('error')})"
    ev = unit["evaluate"]
    value = ev["reported"]
    shown = "n/a" if value is None else f"{value:.4g}"
    return (f"{head}: test {ev['metric']['reported_as']} = {shown} in {unit['seconds'].get('total', 0):.1f} s"
            + ("" if ev["comparable"].get("method") else " (not comparable with the published results)"))


def _prepare(spec: SuiteSpec, out: Path) -> None:
    """Write suite.json, or check that the existing one describes the same grid."""
    from ..evaluate.files import _differences, _json_ready

    path = out / "suite.json"
    if path.exists():
        old = read_suite(out)
        old_spec = SuiteSpec.from_dict(old["spec"])
        if _json_ready(old_spec.computing()) != _json_ready(spec.computing()):
            diffs = _differences(_json_ready(old_spec.computing()), _json_ready(spec.computing()))
            raise InputError(f"{out} holds a suite with other settings ({'; '.join(diffs[:4])}): rerun with the same "
                             "settings to resume it, or choose a new --out")
        old["spec"] = spec.to_dict()  # runtime settings (executor, workers, ...) may change
        old.setdefault("sessions", []).append(_session())
        _write(path, old)
        return
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} exists and is not a suite directory (no suite.json): choose a new --out")
    from ..build.merge import environment

    env = environment(spec.device)
    _write(path, {"format": SUITE_FORMAT, "nb360": __version__, "git_revision": env.get("git_revision"),
                  "spec": spec.to_dict(), "sessions": [_session()], "environment": env})


def _session() -> dict[str, Any]:
    return {"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "pid": os.getpid()}


def _write(path: Path, payload: dict[str, Any]) -> None:
    from ..evaluate import write_json

    write_json(path, payload)


def _check_data(spec: SuiteSpec) -> None:
    """Load each task's search split once, so a missing or broken data set fails before any unit runs."""
    from ..data import load

    for task in spec.tasks:
        load(task, spec.data_root, "search", **spec.loader_options.get(task, {}))


def run_suite(spec: SuiteSpec, out: str | os.PathLike[str], *, progress: bool = True, say: Say = print,
              check_data: bool = True) -> dict[str, Any]:
    """Run every unit of the grid that is not done (resuming interrupted ones); write results.json; return counts."""
    methods = resolve(spec.methods, spec.space)
    spec.methods = tuple(m.name for m in methods)
    spec.validate()
    check_methods_fit(spec)
    out = Path(out)
    if check_data and spec.executor == "local":
        _check_data(spec)
    _prepare(spec, out)
    units = [(m, t, s) for m in spec.methods for t in spec.tasks for s in spec.seeds]
    todo = [u for u in units if (read_unit(unit_dir(out, *u)) or {}).get("status") not in ("done", "skipped")]
    say(f"suite {out}: {len(spec.methods)} methods × {len(spec.tasks)} tasks × {len(spec.seeds)} seeds = {len(units)} "
        f"units, {len(units) - len(todo)} already finished; running {len(todo)} on {spec.executor}"
        + (f" ({spec.workers} workers)" if spec.workers > 1 or spec.executor == "ray" else ""))
    if spec.shortened():
        say(f"shortened protocols ({', '.join('--' + o.replace('_', '-') for o in spec.shortened())}): the results "
            "are not comparable with the published ones, and the report keeps them apart")
    from .executors import run_local, run_ray

    start = time.perf_counter()
    spec_dict = spec.to_dict()
    # units may run in other working directories (Ray workers): they get absolute paths
    spec_dict["data_root"] = str(Path(spec.data_root).expanduser().resolve())
    spec_dict["tables"] = {t: str(Path(p).expanduser().resolve()) for t, p in spec.tables.items()}
    out = out.resolve()
    if spec.executor == "ray":
        stream = run_ray(spec_dict, str(out), todo, spec.workers, progress, address=spec.ray_address,
                         retries=spec.retries, timeout=spec.unit_timeout)
    else:
        stream = run_local(spec_dict, str(out), todo, spec.workers, progress and spec.workers == 1)
    import contextlib

    cluster: Any = contextlib.nullcontext()
    if spec.executor == "local" and spec.workers == 1 and any(u[0] == "wrn-asha" for u in todo):
        from ..evaluate.asha import RayContext

        cluster = RayContext()  # one local Ray instance for every ASHA unit run here (not one per unit)
    with cluster:
        for i, unit in enumerate(stream, 1):
            say(f"[{i}/{len(todo)}] {_describe(unit)}")
    results = collect(out)
    counts = {s: sum(u.get("status") == s for u in results["units"]) for s in ("done", "skipped", "failed", "pending")}
    return {"out": str(out), "units": len(units), "ran": len(todo), "seconds": time.perf_counter() - start, **counts,
            "failed_units": [f"{u['method']} × {u['task']} × seed {u['seed']}: {u.get('error')}"
                             for u in results["units"] if u.get("status") == "failed"]}


def spec_from_json(path: str | os.PathLike[str]) -> SuiteSpec:
    """The spec of an existing suite directory (for `nb360 suite --resume DIR`)."""
    return SuiteSpec.from_dict(json.loads((Path(path) / "suite.json").read_text(encoding="utf-8"))["spec"])
