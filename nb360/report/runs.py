"""Run directories of `nb360 evaluate`, as read from disk."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError, InputError
from ..evaluate import RunDir, read_json, read_log


@dataclass
class Run:
    """One run directory, as read from disk."""

    path: Path
    config: dict[str, Any]
    manifest: dict[str, Any]
    results: dict[str, Any] | None  # None while the run is unfinished
    logs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # seed -> epoch records

    @property
    def name(self) -> str:
        """The directory name."""
        return self.path.name

    @property
    def finished(self) -> bool:
        """True when results.json exists."""
        return self.results is not None


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read a run directory; DataError when it is not one."""
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise InputError(f"{run.path} is not a directory; give run directories written by `nb360 evaluate`")
    if not run.config.exists():
        raise DataError(f"{run.path} is not an nb360 evaluate run directory (no config.json)")
    config = read_json(run.config, "run configuration")
    if "model" not in config or "task" not in config:
        search = (run.path / "genotype.json").exists()
        kind = "a search run (`nb360 search`)" if search else "not an `nb360 evaluate` run"
        where = (" (its results: genotype.json, summary.json or result.json, and the plots/ folder)" if search
                 else "")
        raise DataError(f"{run.path} holds {kind}{where}; `nb360 report` reads run directories written by "
                        "`nb360 evaluate`: retrain the architecture found with `nb360 evaluate --arch ...` and "
                        "report that")
    manifest = read_json(run.manifest, "manifest") if run.manifest.exists() else {}
    results = read_json(run.results, "results") if run.results.exists() else None
    logs = {int(seed): read_log(run.log(int(seed))) for seed in config.get("seeds", [])}
    return Run(path=run.path, config=config, manifest=manifest, results=results, logs=logs)
