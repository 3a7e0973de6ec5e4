"""`nb360 ablate`: E2RNAS with each subset of its objectives × seeds, retrained and attacked, resumably.

For every objective subset ({acc}, {acc, adv}, {acc, size}, {acc, adv, size}; {acc, adv, size, flops}
with `flops=True`) and seed: an E2RNAS search (`run_search`, its own resumable run directory), then,
unless `retrain_epochs=0`, the found architecture retrained with the task's protocol (shortened to
`retrain_epochs`) and attacked on the test split with the E2RNAS authors' FGSM and PGD
(`nb360 evaluate --attacks`). `ablation.json` collects error, robust error (the task metric under
PGD) and parameters per run and per subset (mean ± std over seeds), the Pareto front over runs and
the MGDA weights λ of each search; `REPORT.md` and `plots/` show the trade-off (`ablation_report.py`).

Without a data root the task is the embedded Darcy Flow default: the same generated set as `nb360 run`
(`nb360.table.embedded.EMBEDDED_DATA`), labelled a stand-in everywhere. Rerunning the same command
continues: finished searches and evaluations are read back, interrupted ones resume.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputError

SUBSETS: tuple[tuple[str, ...], ...] = (("acc",), ("acc", "adv"), ("acc", "size"), ("acc", "adv", "size"))
FLOPS_SUBSET = ("acc", "adv", "size", "flops")
FORMAT = "nb360-ablation/1"
Progress = Callable[[str], None]


@dataclass
class AblationConfig:
    """Settings of an ablation (defaults: the embedded Darcy Flow default, minutes on 2 CPU cores)."""

    task: str = "darcyflow"
    out: str = "runs/ablate-darcyflow"
    data_root: str | None = None  # None: the embedded Darcy Flow default generated into <out>/data
    seeds: tuple[int, ...] = (0, 1)
    subsets: tuple[tuple[str, ...], ...] = SUBSETS
    space: str = "nb201"
    epochs: int = 2
    channels: int = 4
    cells: int = 1  # NB201 N; the DARTS space's search cells with space="darts"
    batch_size: int = 32
    second_order: bool = True  # the authors' unrolled step
    retrain_epochs: int = 10  # 0: no retraining (the searches' inherited-weights figures only)
    retrain_channels: int = 4
    retrain_cells: int = 1
    attacks: tuple[str, ...] = ("fgsm", "pgd")
    attack_limit: int | None = None
    device: str = "cpu"
    loader_options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> AblationConfig:
        """Raise InputError on impossible settings; return self."""
        from .search.supernet.config import OBJECTIVES

        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise InputError(f"give distinct seeds, got {list(self.seeds)}")
        for subset in self.subsets:
            if not subset or "acc" not in subset or any(o not in OBJECTIVES for o in subset):
                raise InputError(f"an objective subset must contain acc and only {', '.join(OBJECTIVES)}, got "
                                 f"{','.join(subset)}")
        if len(set(self.subsets)) != len(self.subsets):
            raise InputError("objective subsets repeat")
        for name in ("epochs", "channels", "cells", "batch_size", "retrain_channels", "retrain_cells"):
            if getattr(self, name) < 1:
                raise InputError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.retrain_epochs < 0:
            raise InputError(f"--retrain-epochs must be >= 0, got {self.retrain_epochs}")
        if self.data_root is None and self.task != "darcyflow":
            raise InputError(f"{self.task} needs --data-root (only darcyflow has the embedded default)")
        return self


def label(subset: tuple[str, ...]) -> str:
    """acc+adv+size."""
    return "+".join(subset)


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def default_data(root: Path, say: Progress) -> dict[str, Any]:
    """The embedded Darcy Flow default (as `nb360 run` generates it) in `root`, generated when missing."""
    from .data.darcy_generator import generate_darcyflow
    from .table.embedded import EMBEDDED_DATA as d

    if not (root / "darcyflow_generated.json").exists():
        say(f"data: generating the embedded Darcy Flow default ({d['n_train']} train + {d['n_test']} test at "
            f"{d['resolution']}x{d['resolution']}, seed {d['seed']}) into {root}")
        generate_darcyflow(root, n_train=d["n_train"], n_test=d["n_test"], resolution=d["resolution"], seed=d["seed"],
                           progress=True, workers=1)
    return {"source": "generated", "settings": dict(d), "root": str(root)}


def _search(cfg: AblationConfig, subset: tuple[str, ...], seed: int, data_root: str, run_dir: Path,
            progress: bool) -> dict[str, Any]:
    """One E2RNAS search (read back when finished, resumed when interrupted)."""
    from .search.supernet import default_config, run_search

    result_file = run_dir / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text(encoding="utf-8"))
    shape = {"C": cfg.channels, ("layers" if cfg.space == "darts" else "N"): cfg.cells}
    config = default_config("e2rnas", cfg.task, space=cfg.space, data_root=data_root, seed=seed, objectives=subset,
                            epochs=cfg.epochs, batch_size=cfg.batch_size, second_order=cfg.second_order,
                            compare_darts=False, device=cfg.device, loader_options=cfg.loader_options or None,
                            **shape)
    run_search(config, run_dir, resume=(run_dir / "checkpoint.pt").exists(), progress=progress)
    return json.loads(result_file.read_text(encoding="utf-8"))


def _lambdas(run_dir: Path) -> dict[str, list[float | None]]:
    """λ of every objective per architecture step (steps.jsonl)."""
    out: dict[str, list[float | None]] = {}
    path = run_dir / "steps.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        row = json.loads(line)
        if row.get("arch_step", True):
            for name, value in row["lambda"].items():
                out.setdefault(name, []).append(value)
    return out


def _retrain(cfg: AblationConfig, found: dict[str, Any], seed: int, data_root: str, run_dir: Path,
             progress: bool) -> dict[str, Any]:
    """Retrain the found architecture (shortened protocol) and attack it; its results.json."""
    from .evaluate import EvalSpec, evaluate

    model: dict[str, Any] = ({"genotype": found["genotype"]} if cfg.space == "darts" else
                             {"arch": found["arch_index"], "cells": cfg.retrain_cells})
    spec = EvalSpec(task=cfg.task, data_root=data_root, seeds=(seed,), epochs=cfg.retrain_epochs, device=cfg.device,
                    channels=cfg.retrain_channels, attacks=tuple(cfg.attacks), attack_limit=cfg.attack_limit,
                    loader_options=dict(cfg.loader_options), **model)
    return evaluate(spec, run_dir, progress=progress, command=["nb360", "ablate"]).results


def run_ablation(cfg: AblationConfig, say: Progress = print, progress: bool = True) -> Path:
    """Run (or continue) every subset × seed; write ablation.json, REPORT.md and plots; return REPORT.md's path."""
    from .ablation_report import summarize, write_report

    cfg.validate()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "config.json"
    settings = json.loads(json.dumps(asdict(cfg), default=str))
    if saved.exists():
        old = json.loads(saved.read_text(encoding="utf-8"))
        differ = sorted(k for k in settings if k != "out" and old.get(k) != settings[k])
        if differ:
            raise InputError(f"{out} holds an ablation with other settings ({', '.join(differ)}): rerun with the same "
                             "options to continue it, or pass a new --out")
    _write_json(saved, {**settings, "nb360_version": __version__})
    data = (default_data(out / "data", say) if cfg.data_root is None else
            {"source": "given", "root": cfg.data_root})
    data_root = data["root"]
    runs = []
    start = time.perf_counter()
    total = len(cfg.subsets) * len(cfg.seeds)
    for subset in cfg.subsets:
        for seed in cfg.seeds:
            name = label(subset)
            say(f"[{len(runs) + 1}/{total}] E2RNAS on {cfg.task}, objectives {name}, seed {seed}")
            search_dir = out / "search" / name / f"seed-{seed}"
            found = _search(cfg, subset, seed, data_root, search_dir, progress)
            run: dict[str, Any] = {"subset": name, "objectives": list(subset), "seed": seed,
                                   "genotype": found["genotype"], "arch_index": found.get("arch_index"),
                                   "search_dir": str(search_dir), "search_evaluation": found["evaluation"],
                                   "lambda": _lambdas(search_dir)}
            if cfg.retrain_epochs:
                eval_dir = out / "retrain" / name / f"seed-{seed}"
                run["retrain"] = _retrain(cfg, found, seed, data_root, eval_dir, progress)
                run["retrain_dir"] = str(eval_dir)
            runs.append(run)
    summary = summarize(cfg, runs, data)
    summary["seconds_this_session"] = time.perf_counter() - start
    _write_json(out / "ablation.json", summary)
    report = write_report(out, summary)
    say(f"report written: {report}")
    return report
