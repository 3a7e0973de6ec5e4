"""Markdown reports of `nb360 evaluate` run directories: results tables, learning curves and leaderboards.

`write_report([run_dir, ...], out_dir)` reads each run's config.json, results.json, manifest.json
and per-seed log.jsonl and writes `out_dir/report.md` with PNG plots beside it (matplotlib, Agg
backend: no display needed): learning curves for every run and, when several runs are given, a
leaderboard per task that ranks the runs among the card's reference results. Every reference
number is printed with the source the task card gives for it. Runs still in progress are
reported from their logs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import DataError, InputError
from .evaluate import RunDir, model_label, read_json, read_log
from .tasks import get_task


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


# ----------------------------------------------------------------------------- formatting
def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _mean_std(mean: Any, std: Any) -> str:
    return f"{_num(mean)} ± {_num(std)}" if std is not None else _num(mean)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return out


def _protocol_line(config: dict[str, Any]) -> str:
    p = config["protocol"]
    t = config["train"]
    text = (f"{p['epochs']} epochs, batch {t['batch_size']}, SGD lr {t['lr']} momentum {t['momentum']}"
            f"{' nesterov' if t['nesterov'] else ''} weight decay {t['weight_decay']}, {t['schedule']} schedule")
    if t["schedule"] == "step":
        text += f" (x{t['gamma']} at epochs {', '.join(map(str, t['milestones'])) or 'none'})"
    if p["shortened"]:
        text += (f" — **shortened** from the card's {p['card_epochs']} epochs: not comparable with the reference "
                 "results")
    elif p["changed"]:
        text += f" — changed from the card's {p['card_epochs']} epochs"
    return text


# ----------------------------------------------------------------------------- plots
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(run: Run, path: Path) -> None:
    """Train loss, test metric (reported form) and learning rate per epoch, one line per seed."""
    plt = _pyplot()
    metric = get_task(run.config["task"]).metric.name
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for seed, records in sorted(run.logs.items()):
        if not records:
            continue
        epochs = [r["epoch"] + 1 for r in records]
        axes[0].plot(epochs, [r["train"]["loss"] for r in records], marker=".", label=f"seed {seed}")
        tested = [r for r in records if "test" in r]
        axes[1].plot([r["epoch"] + 1 for r in tested], [r["test"].get("reported") for r in tested], marker=".",
                     label=f"seed {seed}")
        axes[2].plot(epochs, [r["lr"] for r in records], drawstyle="steps-post", label=f"seed {seed}")
    axes[0].set_title("train loss")
    axes[1].set_title(f"test {metric} (reported form, lower is better)")
    axes[2].set_title("learning rate")
    axes[2].set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.suptitle(f"{run.name}: {model_label(run.config['model'])} on {run.config['task']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_leaderboard(entries: list[dict[str, Any]], path: Path, *, units: str, title: str) -> None:
    """Horizontal bars (mean ± std, lower is better): nb360 runs in colour, reference results in grey."""
    plt = _pyplot()
    entries = [e for e in entries if e["value"] is not None]
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(entries) + 1.4))
    y = np.arange(len(entries))[::-1]
    colours = ["tab:blue" if e["kind"] == "run" else "0.6" for e in entries]
    ax.barh(y, [e["value"] for e in entries], xerr=[e["std"] or 0.0 for e in entries], color=colours,
            error_kw={"elinewidth": 1, "capsize": 3})
    ax.set_yticks(y, [e["label"] + (f" [{e['run']}]" if e["kind"] == "run" else "") for e in entries], fontsize=8)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="tab:blue", label="nb360 runs (this report)"),
                       Patch(color="0.6", label="published reference results")], fontsize=7, loc="lower right")
    ax.set_xlabel(units, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- sections
def leaderboard_entries(runs: list[Run]) -> list[dict[str, Any]]:
    """The finished runs of one task and the card's reference rows, best (lowest reported) first."""
    entries: list[dict[str, Any]] = []
    reference = None
    for run in runs:
        results = run.results
        if results is None:
            continue
        reference = results["reference"]
        summary = results["summary"]["reported"]
        note = " (shortened)" if results["protocol"]["shortened"] else ""
        entries.append({"kind": "run", "label": f"{model_label(results['model'])}{note}", "run": run.name,
                        "value": summary["mean"], "std": summary["std"], "seeds": summary["n"],
                        "source": f"nb360 run `{run.name}`", "epochs": results["protocol"]["epochs"]})
    if reference is not None:
        for row in reference["rows"]:
            entries.append({"kind": "reference", "label": f"{row['method']} / {row['variant']}",
                            "value": row.get("value"), "std": row.get("std"), "seeds": None,
                            "note": row.get("note", ""), "source": reference["source"], "epochs": None})
    with_value = sorted((e for e in entries if e["value"] is not None), key=lambda e: e["value"])
    return with_value + [e for e in entries if e["value"] is None]


def _data_fact(run: Run) -> str:
    """The data's origin as the run recorded it (runs before nb360 recorded it: from the file names)."""
    data = (run.results or {}).get("data")
    if data is None:
        names = run.manifest.get("data", {}).get("files", {})
        data = {"source": "generated" if any("generated" in n for n in names) else "released"}
    from .evaluate import describe_data

    text = describe_data(data)
    return text if data["source"] == "released" else f"**{text}**"


def _run_section(run: Run, index: int, out_dir: Path, plots: bool) -> list[str]:
    config, manifest = run.config, run.manifest
    model = config["model"]
    lines = [f"## {index}. `{run.name}`", ""]
    env = manifest.get("environment", {})
    facts = [
        ("task", config["task"]),
        ("model", model_label(model) + (f" — `{model['arch']}`" if model["kind"] == "nb201" else "")),
        ("parameters", f"{config.get('params'):,}" if config.get("params") is not None else "n/a"),
        ("protocol", _protocol_line(config)),
        ("seeds", ", ".join(map(str, config["seeds"]))),
        ("device", f"{config['device_type']} ({env.get('device', 'n/a')}), {config['processes']} process(es)"),
        ("nb360", f"{manifest.get('nb360', 'n/a')} at git {str(manifest.get('git_revision') or 'n/a')[:12]}"
                  f"{' (uncommitted changes)' if manifest.get('git_dirty') else ''}; torch {env.get('torch', 'n/a')}"),
        ("data", _data_fact(run) + f"; {len(manifest.get('data', {}).get('files', {}))} files hashed "
                 "(sha256 in manifest.json)"),
        ("directory", f"`{run.path}`"),
    ]
    lines += [f"- **{k}**: {v}" for k, v in facts]
    uncertain = config["protocol"].get("uncertain") or []
    if uncertain:
        lines += [f"- **uncertain protocol facts**: {'; '.join(uncertain)}"]
    lines.append("")
    results = run.results
    if results is None:
        done = {seed: len(records) for seed, records in run.logs.items()}
        lines += ["**Unfinished**: no results.json yet. Epochs logged per seed: " +
                  ", ".join(f"seed {s}: {n}/{config['protocol']['epochs']}" for s, n in done.items()) +
                  f". Resume it with the same `nb360 evaluate` command and `--out {run.path}`.", ""]
    else:
        metric = results["metric"]["name"]
        rows = [[str(r["seed"]), _num(r["test"].get(metric)), _num(r["test"].get("reported")),
                 _num(r["test"].get("loss")), _num(r["train"].get("loss"))] for r in results["per_seed"]]
        s = results["summary"]
        rows.append(["**mean ± std**", _mean_std(s[metric]["mean"], s[metric]["std"]),
                     _mean_std(s["reported"]["mean"], s["reported"]["std"]), "", ""])
        lines += [f"Test results ({results['metric']['reported_as']}; *reported* = {results['metric']['reported']}):",
                  ""]
        lines += _table(["seed", metric, "reported", "test loss", "train loss"], rows)
        lines += ["", f"std: {s['std']}.", ""]
        ref = results["reference"]
        comparable = ref["comparable"]
        ref_rows = []
        for row in ref["rows"]:
            value = _mean_std(row.get("value"), row.get("std")) if row.get("value") is not None else \
                row.get("note", "n/a")
            mark = " ← comparable" if (row["method"], row["variant"]) == (comparable["method"],
                                                                          comparable["variant"]) else ""
            ref_rows.append([f"{row['method']} / {row['variant']}{mark}", value])
        ref_rows.append([f"**this run** ({model_label(results['model'])})",
                         _mean_std(s["reported"]["mean"], s["reported"]["std"])])
        lines += [f"Reference results ({ref['units']}); source: {ref['source']}. {comparable['note'].capitalize()}.",
                  ""]
        lines += _table(["method / variant", "value"], ref_rows)
        for other in ref.get("other", []):
            lines += ["", f"Other published numbers: {other['text']} (source: {other['source']})"]
        lines.append("")
    if plots and any(run.logs.values()):
        name = f"curves-{index}-{_slug(run.name)}.png"
        plot_learning_curves(run, out_dir / name)
        lines += [f"![learning curves of {run.name}]({name})", ""]
    return lines


def _leaderboard_section(task: str, runs: list[Run], out_dir: Path, plots: bool) -> list[str]:
    finished = [r for r in runs if r.results is not None]
    if not finished:
        return [f"## Leaderboard: {task}", "", "No finished runs of this task yet.", ""]
    results = finished[0].results
    assert results is not None
    ref = results["reference"]
    entries = leaderboard_entries(runs)
    lines = [f"## Leaderboard: {results['title']} ({task})", "",
             f"{results['metric']['reported_as']}, lower is better. Reference rows: {ref['source']} ({ref['units']}). "
             "nb360 rows: this report's runs (mean ± std over their seeds).", ""]
    rows = []
    rank = 0
    for e in entries:
        if e["value"] is not None:
            rank += 1
        value = _mean_std(e["value"], e["std"]) if e["value"] is not None else e.get("note") or "n/a"
        label = f"**{e['label']}**" if e["kind"] == "run" else e["label"]
        rows.append([str(rank) if e["value"] is not None else "", label, value,
                     str(e["seeds"]) if e["seeds"] is not None else "3 (published)",
                     e["source"] if e["kind"] == "run" else "reference"])
    lines += _table(["rank", "model", "value", "seeds", "from"], rows)
    lines.append("")
    if plots and any(e["value"] is not None for e in entries):
        name = f"leaderboard-{_slug(task)}.png"
        plot_leaderboard(entries, out_dir / name, units=ref["units"], title=f"{results['title']}: leaderboard")
        lines += [f"![leaderboard {task}]({name})", ""]
    return lines


def write_report(run_dirs: list[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                 plots: bool = True) -> Path:
    """Write report.md (and its PNG plots) for the run directories into `out_dir`; return the report's path."""
    if not run_dirs:
        raise InputError("give at least one run directory")
    runs = [load_run(d) for d in run_dirs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# nb360 evaluation report", "",
             f"Written by nb360 {__version__} from {len(runs)} run director{'y' if len(runs) == 1 else 'ies'}: " +
             ", ".join(f"`{r.path}`" for r in runs) + ".", ""]
    finished = [r for r in runs if r.finished]
    if finished:
        rows = []
        for r in runs:
            if r.results is None:
                rows.append([f"`{r.name}`", r.config["task"], model_label(r.config["model"]), "unfinished", "", ""])
                continue
            s = r.results["summary"]["reported"]
            p = r.results["protocol"]
            rows.append([f"`{r.name}`", r.config["task"], model_label(r.config["model"]),
                         _mean_std(s["mean"], s["std"]), ", ".join(map(str, r.results["seeds"])),
                         f"{p['epochs']}/{p['card_epochs']}" + (" (shortened)" if p["shortened"] else "")])
        lines += ["## Results", "", "Test metric in the reported (lower-is-better) form, mean ± std over seeds.", ""]
        lines += _table(["run", "task", "model", "reported", "seeds", "epochs"], rows)
        lines.append("")
    if len(runs) > 1:
        by_task: dict[str, list[Run]] = {}
        for r in runs:
            by_task.setdefault(r.config["task"], []).append(r)
        for task, task_runs in by_task.items():
            lines += _leaderboard_section(task, task_runs, out, plots)
    for i, r in enumerate(runs, 1):
        lines += _run_section(r, i, out, plots)
    path = out / "report.md"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
