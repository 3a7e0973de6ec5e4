"""Markdown reports of `nb360 evaluate` run directories: results tables, learning curves and leaderboards.

`write_report([run_dir, ...], out_dir)` reads each run's config.json, results.json, manifest.json
and per-seed log.jsonl and writes `out_dir/report.md` and the same as one self-contained
`report.html` (sortable tables, plots inline), with PNG plots beside them (matplotlib, Agg
backend: no display needed): learning curves for every run and, when several runs are given, a
leaderboard per task that ranks the runs among the card's reference results. Every reference
number is printed with the source the task card gives for it. Runs still in progress are
reported from their logs. Leaderboards draw runs that are not comparable with the published rows
(generated or fixture data, shortened protocols, other models) in their own panel
(`nb360.report.leaderboard`), and print no ± for one seed.

`write_suite_report(suite_dir, out_dir)` reports an `nb360 suite` directory: the methods × tasks
table beside the published rows, performance profiles (`nb360.report.profiles`), per-task
leaderboards and every unit (`nb360.report.suite`), as report.md and report.html.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import __version__
from ..errors import InputError
from ..evaluate import model_label
from .document import from_markdown
from .format import md_table, mean_std
from .html import write_html
from .robustness import robustness_section
from .runs import Run, load_run
from .sections import leaderboard_entries, leaderboard_section, profile_section, run_section

__all__ = ["Run", "leaderboard_entries", "load_run", "write_report", "write_suite_report"]


def write_suite_report(suite_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                       plots: bool = True) -> Path:
    """Write report.md and report.html of a suite directory (`nb360 suite`): see nb360.report.suite."""
    from .suite import write_suite_report as write

    return write(suite_dir, out_dir, plots=plots)


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
                         mean_std(s["mean"], s["std"], s["n"]), ", ".join(map(str, r.results["seeds"])),
                         f"{p['epochs']}/{p['card_epochs']}" + (" (shortened)" if p["shortened"] else "")])
        lines += ["## Results", "", "Test metric in the reported (lower-is-better) form, mean ± std over seeds "
                  "(one seed: the value alone).", ""]
        lines += md_table(["run", "task", "model", "reported", "seeds", "epochs"], rows)
        lines.append("")
    if len(runs) > 1:
        by_task: dict[str, list[Run]] = {}
        for r in runs:
            by_task.setdefault(r.config["task"], []).append(r)
        for task, task_runs in by_task.items():
            lines += leaderboard_section(task, task_runs, out, plots)
        lines += profile_section(runs, out, plots)
    for i, r in enumerate(runs, 1):
        lines += run_section(r, i, out, plots)
        lines += robustness_section(r, i, out, plots)
    path = out / "report.md"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    os.replace(tmp, path)
    write_html(from_markdown(lines), out, title="nb360 evaluation report")  # report.html beside it
    return path
