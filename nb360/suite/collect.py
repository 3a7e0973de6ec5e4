"""A suite's results.json: every unit, and the methods × tasks table with the published rows beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, InputError
from .methods import available_methods
from .spec import SUITE_FORMAT, SuiteSpec
from .unit import read_unit, unit_dir

RESULTS_FORMAT = "nb360-suite-results/1"


def read_suite(out: str | Path) -> dict[str, Any]:
    """A suite directory's suite.json (InputError when `out` is not a suite directory)."""
    path = Path(out) / "suite.json"
    if not path.exists():
        raise InputError(f"{out} is not an nb360 suite directory (no suite.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if data.get("format") != SUITE_FORMAT:
        raise DataError(f"{path} is not a suite description of format {SUITE_FORMAT}")
    return data


def _data_kind(unit: dict[str, Any]) -> str:
    """released, generated or fixture (released-layout files whose size is not the released one)."""
    ev = unit.get("evaluate") or {}
    data = ev.get("data") or {}
    if data.get("source", "released") != "released":
        return str(data["source"])
    note = (ev.get("comparable") or {}).get("note", "")
    return "fixture" if "a fixture or a subset" in note else "released"


def _cell(method: Any, task: str, units: list[dict[str, Any]], search_shortened: bool) -> dict[str, Any]:
    done = [u for u in units if u.get("status") == "done"]
    values = [u["evaluate"]["reported"] for u in done if u["evaluate"]["reported"] is not None]
    cell: dict[str, Any] = {
        "method": method.name, "task": task, "seeds": [u["seed"] for u in done], "values": values,
        "n": len(values), "mean": float(np.mean(values)) if values else None,
        "std": float(np.std(values)) if len(values) > 1 else None,
        "status": {s: sum(u.get("status") == s for u in units) for s in ("done", "failed", "skipped", "pending")},
        "skipped_reason": next((u.get("reason") for u in units if u.get("status") == "skipped"), None),
    }
    if done:
        kinds = sorted({_data_kind(u) for u in done})
        shortened = any(u["evaluate"]["protocol"].get("changed") for u in done) or (
            method.kind != "baseline" and search_shortened)
        row = method.published
        matches = all((u["evaluate"]["comparable"] or {}).get("method") is not None and row is not None and
                      (u["evaluate"]["comparable"]["method"], u["evaluate"]["comparable"]["variant"]) == tuple(row)
                      for u in done)
        cell.update(data=kinds, shortened=shortened, comparable=bool(matches and not shortened and kinds == ["released"]),
                    published_row=list(row) if row else None, metric=done[0]["evaluate"]["metric"],
                    seconds=[u.get("seconds", {}).get("total") for u in done])
        why = []
        if kinds != ["released"]:
            why.append(f"{'/'.join(kinds)} data")
        if shortened:
            why.append("shortened protocol")
        if row is None:
            why.append("no published row of this method")
        elif not matches and not why:
            why.append("a setting differs from the published row's")
        cell["not_comparable_because"] = why if not cell["comparable"] else []
    return cell


def collect(out: str | Path) -> dict[str, Any]:
    """Read every unit of the suite in `out` and write (and return) out/results.json."""
    from ..evaluate import write_json
    from ..tasks import get_task

    suite = read_suite(out)
    spec = SuiteSpec.from_dict(suite["spec"])
    methods = available_methods()
    missing = [m for m in spec.methods if m not in methods]
    if missing:
        raise DataError(f"the suite in {out} ran method(s) {', '.join(missing)} that this nb360 does not know")
    units, cells = [], []
    search_shortened = any(getattr(spec, o) is not None for o in
                           ("search_epochs", "search_channels", "search_cells", "search_batch_size",
                            "search_max_steps", "tabular_budget"))
    for name in spec.methods:
        for task in spec.tasks:
            group = []
            for seed in spec.seeds:
                unit = read_unit(unit_dir(Path(out), name, task, seed)) or {"method": name, "task": task,
                                                                           "seed": seed, "status": "pending"}
                group.append(unit)
            units += group
            cells.append(_cell(methods[name], task, group, search_shortened))
    published = {}
    for task in spec.tasks:
        card = get_task(task)
        refs = card.reference_results
        published[task] = {"title": card.title, "metric": card.metric.reported_as, "units": refs.get("units"),
                           "source": refs.get("source"), "rows": refs.get("rows", [])}
    results = {"format": RESULTS_FORMAT, "spec": suite["spec"], "nb360": suite.get("nb360"),
               "shortened": spec.shortened(), "units": units, "cells": cells, "published": published,
               "methods": {m: {"label": methods[m].label, "kind": methods[m].kind,
                               "published_row": methods[m].published} for m in spec.methods}}
    write_json(Path(out) / "results.json", results)
    return results
