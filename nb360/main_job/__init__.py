"""`nb360 run`, the main job: search and evaluate on the embedded Darcy Flow default, end to end.

1. Generate a small Darcy Flow set (the same settings, hence the same files, as the embedded table's).
2. Tabular search (REA against random search) on the embedded precomputed table, with simulated time.
3. A short E2RNAS weight-sharing search on the task itself (accuracy, adversarial loss and model size).
4. Retrain the architectures found and the dense WRN baseline with the task's protocol, shortened.
5. Write REPORT.md with the figures, the plots and where every number comes from.

Every step writes into the run directory and skips or resumes what is already there, so rerunning the
command after an interruption continues. Options scale every step up to the full protocol.
The tabular step and its statistics live in `nb360.main_job.tabular`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import DataError, InputError
from ..table.embedded import EMBEDDED_DATA, EMBEDDED_DATA_BODY_SHA256, embedded_table_path
from .tabular import MAIN_JOB_PROTOCOL, compare_finals, comparison_text, step_tabular

TASK = "darcyflow"
# Robustness of the retrained architectures the searches found (nb360.evaluate.attacks; the card's threat model:
# 0.1 permeability units on the coefficient channel): the E2RNAS authors' FGSM and PGD-10 and the standard strong
# PGD beside them, here with one random start instead of five (five would add about a minute to the job on 2 cores).
# The WRN baseline is not attacked: its 2.7M parameters would more than double the job.
ATTACKS = ("fgsm", "pgd", "pgd-strong")
ATTACK_SETTINGS = {"pgd-strong.restarts": 1}
ATTACKED = ("tabular-rea", "e2rnas")


@dataclass
class MainJobConfig:
    """Settings of the main job (defaults: about 1.5 minutes on 2 CPU cores)."""

    out: str = "runs/main"
    data_root: str | None = None  # default: <out>/data
    table: str | None = None  # default: the embedded table
    seed: int = 0
    budget: float | None = None  # simulated seconds per tabular repeat; default: 20 queries' worth
    repeats: int = 100
    search_epochs: int = 2  # E2RNAS epochs
    search_channels: int = 4
    search_cells: int = 1
    objectives: tuple[str, ...] = ("acc", "adv", "size")
    eval_epochs: int | None = 10  # None: the task card's full retrain protocol
    eval_seeds: tuple[int, ...] = (0,)
    eval_channels: int = 4
    eval_cells: int = 1
    device: str = "cpu"
    data: dict[str, Any] = field(default_factory=lambda: dict(EMBEDDED_DATA))


Progress = Callable[[str], None]


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def _step_data(cfg: MainJobConfig, root: Path, say: Progress) -> dict[str, Any]:
    from ..data.darcy_generator import generate_darcyflow
    from ..data.fingerprint import fingerprint

    marker = root / "darcyflow_generated.json"
    if marker.exists():
        say(f"[1/5] data: reusing the Darcy Flow set in {root}")
    else:
        d = cfg.data
        say(f"[1/5] data: generating Darcy Flow ({d['n_train']} train + {d['n_test']} test at "
            f"{d['resolution']}x{d['resolution']}, seed {d['seed']}) into {root}")
        generate_darcyflow(root, n_train=d["n_train"], n_test=d["n_test"], resolution=d["resolution"], seed=d["seed"],
                           progress=True)
    record = json.loads(marker.read_text())
    return {"root": str(root), "settings": cfg.data, "files": fingerprint(TASK, root), "source": record}


_SETTINGS = ("generator", "seed", "n", "resolution", "pipeline")


def compare_data(table_data: dict[str, Any], job_data: dict[str, Any],
                 known_bodies: dict[str, str] | None = None) -> dict[str, bool | None]:
    """Whether the job's generated data equals the data the table was built on.

    Three answers: the generator settings, the .mat files byte for byte, and their data (the bytes after
    the MAT header's free text, which older nb360 versions filled with the creation time). None: the
    table's record does not carry what the comparison needs. `known_bodies` supplies body checksums the
    record lacks (the embedded table's, from nb360.table.embedded).
    """
    source = table_data.get("source") or {}
    same_settings = bool(source) and all(source.get(k) == job_data["source"].get(k) for k in _SETTINGS)
    mats = [k for k in job_data["files"] if k.endswith(".mat")]
    table_files = table_data.get("files") or {}
    same_files = bool(mats) and all(table_files.get(k, {}).get("sha256") == job_data["files"][k]["sha256"]
                                    for k in mats)
    job_bodies = {k: v.get("body_sha256") for k, v in (job_data["source"].get("files") or {}).items()}
    table_bodies = {**(known_bodies or {}),
                    **{k: v["body_sha256"] for k, v in (source.get("files") or {}).items() if v.get("body_sha256")}}
    if same_files:
        same_data: bool | None = True
    elif mats and all(table_bodies.get(k) and job_bodies.get(k) for k in mats):
        same_data = all(table_bodies[k] == job_bodies[k] for k in mats)
    else:
        same_data = None
    return {"same_generator_settings": same_settings, "identical_files": same_files, "identical_data": same_data}


def _e2rnas_config(cfg: MainJobConfig, data_root: Path) -> Any:
    from ..search.supernet.config import default_config

    return default_config("e2rnas", TASK, data_root=str(data_root), seed=cfg.seed, C=cfg.search_channels,
                          N=cfg.search_cells, epochs=cfg.search_epochs, batch_size=32, objectives=cfg.objectives,
                          device=cfg.device).validate()


def _step_e2rnas(cfg: MainJobConfig, data_root: Path, out: Path, say: Progress) -> dict[str, Any]:
    from ..search.supernet import run_search

    run_dir = out / "e2rnas"
    config = _e2rnas_config(cfg, data_root)
    say(f"[3/5] E2RNAS search on {TASK} (objectives {', '.join(cfg.objectives)}; MGDA), {cfg.search_epochs} epochs "
        f"of a C={cfg.search_channels}, N={cfg.search_cells} supernet")
    result = run_search(config, run_dir, resume=(run_dir / "checkpoint.pt").exists())
    return {"run_dir": str(run_dir), "genotype": result.genotype, "arch_index": int(result.arch_index),
            "objectives": list(cfg.objectives)}


def _step_evaluate(cfg: MainJobConfig, data_root: Path, out: Path, models: dict[str, dict[str, Any]],
                   say: Progress) -> dict[str, Any]:
    from ..evaluate import EvalSpec, evaluate

    say(f"[4/5] retraining {len(models)} models on {TASK} (train+val -> test), "
        f"{'the full protocol' if cfg.eval_epochs is None else f'{cfg.eval_epochs} epochs'}, seeds "
        f"{', '.join(map(str, cfg.eval_seeds))}")
    out_models = {}
    for label, model in models.items():
        attacks = ATTACKS if label in ATTACKED else ()
        spec = EvalSpec(task=TASK, data_root=str(data_root), seeds=tuple(cfg.eval_seeds), epochs=cfg.eval_epochs,
                        device=cfg.device, channels=cfg.eval_channels, cells=cfg.eval_cells,
                        attacks=attacks, attack_overrides=dict(ATTACK_SETTINGS) if attacks else {}, **model)
        result = evaluate(spec, out / "evaluate" / label, progress=True, command=["nb360", "run"])
        summary = result.results["summary"]
        robust = result.results.get("robustness") or {"threat": None, "summary": {}}
        out_models[label] = {"run_dir": str(result.run_dir), **model, "params": result.results["model"].get("params"),
                             "reported": summary["reported"], "threat": robust["threat"],
                             "robustness": {k: v["reported"] for k, v in robust["summary"].items() if k != "clean"},
                             "attacks": {k: v["description"] for k, v in robust.get("attacks", {}).items()}}
    return out_models


def _data_comparison_text(match: dict[str, bool | None], body_checksums: str) -> str:
    """One sentence saying how the job's data compares with the table's training data."""
    data = {True: "**True**", False: "**False**",
            None: "not checkable (the table's record predates per-file data checksums)"}[match.get("identical_data")]
    return ("Compared with the data the searched table was built on: same generator settings "
            f"**{match['same_generator_settings']}**, byte-identical .mat files **{match['identical_files']}**, "
            f"identical data (the files after the MAT header's free text; the table's checksums from "
            f"{body_checksums}) {data}.")


def _report(out: Path, summary: dict[str, Any]) -> Path:
    from ..report import write_report

    eval_dirs = [m["run_dir"] for m in summary["evaluate"].values()]
    write_report(eval_dirs, out / "evaluation-report")
    tab, e2 = summary["tabular"], summary["e2rnas"]
    direction = "higher" if tab["final_mode"] == "max" else "lower"
    lines = [
        "# nb360 main job", "",
        f"nb360 {__version__}; task {TASK} (generated Darcy Flow, see below); run directory `{out}`.", "",
        "## 1. Data", "",
        f"Darcy Flow generated by `nb360 data generate darcyflow` with {summary['data']['settings']} in "
        f"`{summary['data']['root']}` (the FNO recipe; GENERATED data, not the released files). Files and sha256:", "",
    ]
    lines += [f"- `{name}`: {info['sha256']}" for name, info in summary["data"]["files"].items()]
    lines += [
        "", _data_comparison_text(summary["data_matches_table"], summary["data_body_checksums"]), "",
        "## 2. Tabular search on the embedded table", "",
        f"Table `{tab['table']}`, built by `nb360 table build` itself (provenance: "
        f"{tab['table_provenance'].get('builder')}, {tab['table_provenance'].get('archs_trained')} archs trained, "
        f"finished {tab['table_provenance'].get('finished')}). Search signal `{tab['search_metric']}`, reported "
        f"metric `{tab['final_metric']}` ({direction} is better; a Darcy Flow `accuracy` is NAS-Bench-360's 1 − "
        f"relative L2, as its released Darcy tables record it); budget {tab['budget_s']:.0f} simulated seconds per "
        f"repeat, NAS-Bench-360's search rules (`--protocol nb360`, docs/search-protocols.md) except that an "
        "incumbent's final metric is its mean over the table's seeds (NATS's `is_random=False`), where NAS-Bench-360's "
        "scripts read one random seed: the methods are compared on seed means, not on one seed's luck "
        f"(protocol `{tab.get('protocol', 'nb360')}` in the run's config).", "",
        "| method | repeats | final metric, mean ± std | queries per repeat |", "|---|---|---|---|",
    ]
    for method, s in tab["summaries"].items():
        lines.append(f"| {method.upper()} | {s['repeats']} | {s['final_mean']:.4f} ± {s['final_std']:.4f} | "
                     f"{s['queries_mean']:.1f} |")
    lines += [
        "", comparison_text(tab), "",
        f"Best arch in the table: {tab['optimum']['arch']} ({tab['optimum']['value']:.4f}). Most often found by "
        f"REA: {tab['found_arch']} `{tab['found_arch_str']}`.", "",
        "![REA trajectory](tabular/rea/plots/trajectory.png)", "",
        "## 3. E2RNAS on the task", "",
        f"Objectives {', '.join(e2['objectives'])} combined per step by MGDA min-norm weights. Found cell "
        f"`{e2['genotype']}` (index {e2['arch_index']}). Logs, λ trajectory and plots: `{e2['run_dir']}`.", "",
        "![λ](e2rnas/plots/lambda.png)", "",
        "## 4. Retraining: found architectures against the WRN baseline, clean and under attack", "",
        "| model | params (M) | test relative L2 (mean ± std over seeds; one seed: the value alone) | " + " | ".join(
            f"under {a}" for a in ATTACKS) + " | seeds |", "|---|---|---|" + "---|" * len(ATTACKS) + "---|",
    ]

    def ms(r: dict[str, Any]) -> str:
        if r.get("mean") is None:
            return "n/a"
        if r.get("n") == 1:  # one seed: no ± (a spread of 0 was never measured)
            return f"{r['mean']:.4f}"
        return f"{r['mean']:.4f} ± {r['std']:.4f}"

    for label, m in summary["evaluate"].items():
        params = f"{m['params'] / 1e6:.4f}" if isinstance(m.get("params"), (int, float)) else "?"
        robust = m.get("robustness", {})
        attacked = " | ".join(ms(robust.get(a, {})) for a in ATTACKS) if robust else " | ".join(
            "not attacked" for _ in ATTACKS)
        lines.append(f"| {label} | {params} | {ms(m['reported'])} | {attacked} | {m['reported'].get('n')} |")
    threat = next((m["threat"] for m in summary["evaluate"].values() if m.get("threat")), None)
    if threat:
        attacks = next(m["attacks"] for m in summary["evaluate"].values() if m.get("attacks"))
        lines += ["", f"Robustness of the architectures found: the test relative L2 after an L∞ attack of ε = "
                      f"{threat['eps_text']} ({threat['unit']} units; {threat['perturb']}); source of ε: the task "
                      "card's [robustness] section (`nb360 tasks show darcyflow`). fgsm and pgd are the E2RNAS "
                      "authors' attacks, pgd-strong a standard strong one; the gap between them is what the weak "
                      "attacks overstate. Attacks: " + "; ".join(f"{k}: {v}" for k, v in attacks.items()) + "."]
    lines += ["", "The protocol was shortened for a quick run (see each run's results.json), so no published "
              "reference row is directly comparable; `evaluation-report/report.md` has learning curves and the "
              "card's reference results with their source.", "",
              "Rerun `nb360 run` to continue an interrupted job; `nb360 run --help` lists the options that scale it "
              "up (full protocol: `--eval-epochs 0`, more seeds, a bigger supernet, `--device cuda`).", ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(lines))
    return path


def _refuse_other_options(path: Path, cfg: MainJobConfig) -> None:
    """A run directory resumes only the job it holds: other options would mix two jobs' results."""
    if not path.exists():
        return
    old = json.loads(path.read_text())
    new = json.loads(json.dumps(asdict(cfg), default=str))  # tuples become lists, as in the saved file
    differ = sorted(k for k in new if k != "out" and old.get(k) != new[k])
    if differ:
        listed = ", ".join(f"{k} {old.get(k)!r} -> {new[k]!r}" for k in differ)
        raise InputError(f"{path.parent} holds a main job run with other options ({listed}): rerun with the same "
                         "options to resume it, or pass a new --out")


def validate(cfg: MainJobConfig, table_path: Path, data_root: Path) -> None:
    """Check every option before any step runs or anything is written (a typo must not cost a run directory)."""
    from ..devices import require_available

    require_available(cfg.device)
    if cfg.repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {cfg.repeats}")
    if cfg.budget is not None and not cfg.budget > 0:
        raise InputError(f"--budget (simulated seconds per repeat) must be positive, got {cfg.budget}")
    if cfg.eval_epochs is not None and cfg.eval_epochs < 1:
        raise InputError(f"--eval-epochs must be at least 1 (or 0 for the task card's protocol), got {cfg.eval_epochs}")
    if cfg.search_channels < 1 or cfg.search_cells < 1 or cfg.search_epochs < 1:
        raise InputError(f"--search-channels, --search-cells and --search-epochs must be at least 1, got "
                         f"{cfg.search_channels}, {cfg.search_cells} and {cfg.search_epochs}")
    if not cfg.eval_seeds:
        raise InputError("--eval-seeds needs at least one seed")
    if cfg.eval_channels < 1 or cfg.eval_cells < 1:
        raise InputError(f"--eval-channels and --eval-cells must be at least 1, got {cfg.eval_channels} and "
                         f"{cfg.eval_cells}")
    if not table_path.exists():
        raise DataError(f"table {table_path} not found: pass --table PATH (an nb360 table, e.g. from "
                        "`nb360 table import` or `nb360 table build`)")
    from ..search.tabular import TabularProblem
    from ..table import Table

    TabularProblem.from_table(Table.open(table_path))  # a corrupt table or one without the task's metric
    _e2rnas_config(cfg, data_root)  # objectives, supernet size, epochs


def run_main_job(cfg: MainJobConfig, say: Progress = print) -> Path:
    """Run every step (resuming what is done) and return the path of REPORT.md."""
    out = Path(cfg.out)
    table_path = Path(cfg.table) if cfg.table else embedded_table_path()
    data_root = Path(cfg.data_root) if cfg.data_root else out / "data"
    validate(cfg, table_path, data_root)
    out.mkdir(parents=True, exist_ok=True)
    _refuse_other_options(out / "config.json", cfg)
    _write_json(out / "config.json", {**asdict(cfg), "nb360_version": __version__})
    summary: dict[str, Any] = {"data": _step_data(cfg, data_root, say)}
    from ..table import Table

    is_embedded = table_path.resolve() == embedded_table_path()
    table_data = Table.open(table_path).runs[0].protocol.get("data", {})
    summary["data_matches_table"] = compare_data(table_data, summary["data"],
                                                 EMBEDDED_DATA_BODY_SHA256 if is_embedded else None)
    summary["data_body_checksums"] = "nb360/table/embedded.py" if is_embedded else "the table's record"
    summary["tabular"] = step_tabular(cfg, table_path, out, say)
    summary["e2rnas"] = _step_e2rnas(cfg, data_root, out, say)
    models = {
        "tabular-rea": {"arch": summary["tabular"]["found_arch"]},
        "e2rnas": {"arch": summary["e2rnas"]["arch_index"]},
        "wrn-baseline": {"backbone": "dense-wrn"},
    }
    summary["evaluate"] = _step_evaluate(cfg, data_root, out, models, say)
    _write_json(out / "summary.json", summary)
    report = _report(out, summary)
    say(f"[5/5] report written: {report}")
    return report


__all__ = ["MAIN_JOB_PROTOCOL", "MainJobConfig", "compare_data", "compare_finals", "run_main_job", "validate"]
