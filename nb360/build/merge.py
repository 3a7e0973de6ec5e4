"""Merges the finished shards of a build into an nb360 table, with its protocol and provenance."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import InputError
from ..space import nb201
from ..table.writer import RunData, write_table
from .shards import WorkDir
from .spec import BuildSpec

_SPLIT_ORDER = {"train": 0, "x-valid": 1, "ori-test": 2}
_QUANTITY_ORDER = {"loss": 0, "accuracy": 1, "time": 9}


def _metric_key(name: str) -> tuple[int, int, str]:
    for split, rank in _SPLIT_ORDER.items():
        if name.startswith(split + "-"):
            quantity = name[len(split) + 1:]
            return rank, _QUANTITY_ORDER.get(quantity, 5 + quantity.startswith("accuracy_")), quantity
    return 9, 9, name


def git_revision() -> str | None:
    """The git revision of the nb360 source tree, when it is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def git_dirty() -> bool | None:
    """Whether the nb360 source tree has uncommitted changes (None outside git)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def environment(device: str) -> dict[str, Any]:
    """Versions and the device the numbers were measured on."""
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None
    return {"nb360": __version__, "git_revision": git_revision(), "git_dirty": git_dirty(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "python": platform.python_version(), "cpu": cpu, "gpu": gpu,
            "platform": platform.platform()}


def run_data(spec: BuildSpec, seed: int, records: list[dict[str, Any]], protocol: dict[str, Any]) -> RunData:
    """Dense arrays (one row per trained arch) from a seed's records."""
    if not records:
        raise InputError(f"seed {seed} has no finished archs to merge")
    metrics = sorted({m for r in records for m in r["curves"]}, key=_metric_key)
    scalars = [s for s in ("params", "flops", "latency", "wall-time") if any(s in r["scalars"] for r in records)]
    rows, epochs = len(records), spec.epochs
    curves = np.full((rows, len(metrics), epochs), np.nan, dtype=np.float32)
    present = np.zeros(curves.shape, dtype=bool)
    scalar_values = np.full((rows, len(scalars)), np.nan)
    scalar_present = np.zeros(scalar_values.shape, dtype=bool)
    for i, rec in enumerate(records):
        for j, name in enumerate(metrics):
            for e, value in enumerate(rec["curves"].get(name, [None] * epochs)):
                if value is not None:
                    curves[i, j, e], present[i, j, e] = value, True
        if rec.get("diverged_at") is not None:  # a diverged run: every metric is a recorded NaN from then on
            curves[i, :, rec["diverged_at"]:] = np.nan
            present[i, :, rec["diverged_at"]:] = True
        for j, name in enumerate(scalars):
            if rec["scalars"].get(name) is not None:
                scalar_values[i, j], scalar_present[i, j] = rec["scalars"][name], True
    return RunData(task=spec.task, hp=str(epochs), seed=seed, metrics=metrics, scalars=scalars,
                   arch_ids=np.array([r["arch"] for r in records]), curves=curves, curves_present=present,
                   scalar_values=scalar_values, scalars_present=scalar_present, valid_split="x-valid",
                   time_kind="measured", protocol=protocol,
                   row_sharing="isomorphism" if _shares_rows(spec) else "none")


def _shares_rows(spec: BuildSpec) -> bool:
    """Builds of isomorphism-class representatives answer every member of a trained class."""
    return spec.archs == "unique" or spec.archs.startswith("unique-sample:")


def _protocol(spec: BuildSpec, data_provenance: dict[str, Any]) -> dict[str, Any]:
    """The protocol record of a build's runs."""
    return {
        "epochs": spec.epochs, "hp": str(spec.epochs), "optimizer": "SGD", **spec.train_config(0).to_dict(),
        "network": {"channel": spec.channels, "num_cells": spec.cells},
        "archs": spec.archs, "archs_note": ("one arch per isomorphism class is trained (unique: all 6,466 classes; "
                                            "unique-sample:N:SEED: N classes drawn uniformly); every other member "
                                            "of a trained class reads its representative's row")
        if _shares_rows(spec) else None,
        "build": spec.to_dict(), "data": data_provenance, "environment": environment(spec.device),
        "times": "measured wall-clock seconds on the device above (train: one epoch; eval: one pass)" + (
            "" if spec.stack <= 1 else f" of stacks of up to {spec.stack} archs trained together, apportioned to each "
                                       "arch in proportion to its FLOPs; latency measured per arch alone"),
        "source": "trained by nb360 table build",
    }


def _finished_runs(path: str | Path, data_provenance: dict[str, Any]) -> list[RunData]:
    """The runs of another finished build (`--merge-with`), checked to be of the same task and data."""
    work = WorkDir.load(path)
    if work.pending() or not (work.path / "data.json").exists():
        raise InputError(f"{path}: that build is not finished; finish it (rerun its `nb360 table build`) before "
                         "merging it")
    data = json.loads((work.path / "data.json").read_text())
    if data.get("files") != data_provenance.get("files"):
        raise InputError(f"{path}: that build trained on other data files than this one; only builds on the same "
                         "data can share a table")
    return [run_data(work.spec, seed, work.records(seed), _protocol(work.spec, data)) for seed in work.spec.seeds]


def merge(work: WorkDir, out: str | Path, started: str, data_provenance: dict[str, Any],
          merge_with: Sequence[str | Path] = ()) -> Path:
    """Write the table from every finished shard of the work directory (and the runs of finished `merge_with`)."""
    spec = work.spec
    protocol = _protocol(spec, data_provenance)
    runs = [run_data(spec, seed, work.records(seed), protocol) for seed in spec.seeds]
    diverged = sum(1 for seed in spec.seeds for r in work.records(seed) if r.get("diverged_at") is not None)
    for path in merge_with:
        runs += _finished_runs(path, data_provenance)
        other = WorkDir.load(path)
        diverged += sum(1 for seed in other.spec.seeds for r in other.records(seed) if r.get("diverged_at") is not None)
    keys = [(r.task, r.hp, r.seed) for r in runs]
    if len(set(keys)) != len(keys):
        raise InputError(f"the merged builds record the same task, fidelity and seed twice ({sorted(keys)}); merge "
                         "builds of other fidelities (--epochs) or seeds")
    provenance = {"builder": f"nb360 {__version__} nb360 table build", "started": started, "runs_diverged": diverged,
                  "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "archs_trained": int(sum(len(r.arch_ids) for r in runs)),
                  "note": "every value was measured by training; nothing is copied from another table"}
    return write_table(out, runs, archs=[nb201.arch_str(i) for i in range(nb201.NUM_ARCHS)], provenance=provenance)
