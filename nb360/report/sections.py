"""The report's sections: per-run results and per-task leaderboards among the reference results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..evaluate import model_label
from .format import md_table, mean_std, num, protocol_line, slug
from .leaderboard import group_of, plot_leaderboard, seeds_text
from .plots import plot_learning_curves
from .runs import Run


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
        comparable = results["reference"]["comparable"]
        entries.append({"kind": "run", "label": f"{model_label(results['model'])}{note}", "run": run.name,
                        "value": summary["mean"], "std": summary["std"] if summary["n"] > 1 else None,
                        "seeds": summary["n"], "source": f"nb360 run `{run.name}`",
                        "epochs": results["protocol"]["epochs"], "comparable": comparable.get("method") is not None,
                        "comparable_row": [comparable.get("method"), comparable.get("variant")],
                        "why_apart": _why_apart(results)})
    if reference is not None:
        for row in reference["rows"]:
            entries.append({"kind": "reference", "label": f"{row['method']} / {row['variant']}",
                            "value": row.get("value"), "std": row.get("std"), "seeds": None,
                            "note": row.get("note", ""), "source": reference["source"], "epochs": None})
    with_value = sorted((e for e in entries if e["value"] is not None), key=lambda e: e["value"])
    return with_value + [e for e in entries if e["value"] is None]


def _why_apart(results: dict[str, Any]) -> str | None:
    """Why a run is not comparable with the published rows, in a few words (None when it is)."""
    if results["reference"]["comparable"].get("method") is not None:
        return None
    data = results.get("data") or {"source": "released"}
    note = results["reference"]["comparable"].get("note", "")
    if data.get("source", "released") != "released":
        return f"{data['source']} data"
    if "a fixture or a subset" in note:
        return "fixture data"
    if results["protocol"].get("shortened"):
        return "shortened protocol"
    if results["protocol"].get("changed"):
        return "changed protocol"
    return "another model or setting"


def _data_fact(run: Run) -> str:
    """The data's origin as the run recorded it (runs before nb360 recorded it: from the file names)."""
    data = (run.results or {}).get("data")
    if data is None:
        names = run.manifest.get("data", {}).get("files", {})
        data = {"source": "generated" if any("generated" in n for n in names) else "released"}
    from ..evaluate import describe_data

    text = describe_data(data)
    return text if data["source"] == "released" else f"**{text}**"


def run_section(run: Run, index: int, out_dir: Path, plots: bool) -> list[str]:
    config, manifest = run.config, run.manifest
    model = config["model"]
    lines = [f"## {index}. `{run.name}`", ""]
    env = manifest.get("environment", {})
    facts = [
        ("task", config["task"]),
        ("model", model_label(model) + (f" — `{model['arch']}`" if model["kind"] == "nb201" else "")),
        ("parameters", f"{config.get('params'):,}" if config.get("params") is not None else "n/a"),
        ("protocol", protocol_line(config)),
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
        rows = [[str(r["seed"]), num(r["test"].get(metric)), num(r["test"].get("reported")),
                 num(r["test"].get("loss")), num(r["train"].get("loss"))] for r in results["per_seed"]]
        s = results["summary"]
        n = s["reported"]["n"]
        rows.append(["**mean ± std**" if n > 1 else "**value (1 seed)**", mean_std(s[metric]["mean"], s[metric]["std"],
                                                                                   n),
                     mean_std(s["reported"]["mean"], s["reported"]["std"], n), "", ""])
        lines += [f"Test results ({results['metric']['reported_as']}; *reported* = {results['metric']['reported']}):",
                  ""]
        lines += md_table(["seed", metric, "reported", "test loss", "train loss"], rows)
        lines += ["", f"std: {s['std']}.", ""]
        ref = results["reference"]
        comparable = ref["comparable"]
        ref_rows = []
        for row in ref["rows"]:
            value = mean_std(row.get("value"), row.get("std")) if row.get("value") is not None else \
                row.get("note", "n/a")
            mark = " ← comparable" if (row["method"], row["variant"]) == (comparable["method"],
                                                                          comparable["variant"]) else ""
            ref_rows.append([f"{row['method']} / {row['variant']}{mark}", value])
        ref_rows.append([f"**this run** ({model_label(results['model'])})",
                         mean_std(s["reported"]["mean"], s["reported"]["std"], s["reported"]["n"])])
        lines += [f"Reference results ({ref['units']}); source: {ref['source']}. {comparable['note'].capitalize()}.",
                  ""]
        lines += md_table(["method / variant", "value"], ref_rows)
        for other in ref.get("other", []):
            lines += ["", f"Other published numbers: {other['text']} (source: {other['source']})"]
        lines.append("")
    if plots and any(run.logs.values()):
        name = f"curves-{index}-{slug(run.name)}.png"
        plot_learning_curves(run, out_dir / name)
        lines += [f"![learning curves of {run.name}]({name})", ""]
    return lines


def leaderboard_section(task: str, runs: list[Run], out_dir: Path, plots: bool) -> list[str]:
    finished = [r for r in runs if r.results is not None]
    if not finished:
        return [f"## Leaderboard: {task}", "", "No finished runs of this task yet.", ""]
    results = finished[0].results
    assert results is not None
    ref = results["reference"]
    entries = leaderboard_entries(runs)
    lines = [f"## Leaderboard: {results['title']} ({task})", "",
             f"{results['metric']['reported_as']}, lower is better. Published rows: {ref['source']} ({ref['units']}). "
             "nb360 rows: this report's runs, mean ± std over the seeds in their row (one seed: the value alone). "
             "Runs that are not comparable with the published results (generated or fixture data, a shortened "
             "protocol, another model) are ranked apart, below them, and drawn in their own panel.", ""]
    rows = []
    for group, heading in (("published", "published"), ("comparable", "comparable run"), ("apart", "NOT comparable")):
        members = [e for e in entries if group_of(e) == group]
        rank = 0
        for e in members:
            if e["value"] is not None:
                rank += 1
            value = mean_std(e["value"], e["std"], e.get("seeds")) if e["value"] is not None else \
                e.get("note") or "n/a"
            label = f"**{e['label']}**" if e["kind"] == "run" else e["label"]
            why = f" ({e['why_apart']})" if group == "apart" else ""
            rows.append([f"{rank}" if e["value"] is not None else "", heading + why, label, value,
                         seeds_text(e["seeds"]) if e["seeds"] is not None else "3 (published)",
                         e["source"] if e["kind"] == "run" else "reference"])
    lines += md_table(["rank in group", "group", "model", "value", "seeds", "from"], rows)
    lines.append("")
    if plots and any(e["value"] is not None for e in entries):
        name = f"leaderboard-{slug(task)}.png"
        plot_leaderboard(entries, out_dir / name, units=ref["units"], metric=results["metric"]["reported_as"],
                         title=f"{results['title']}: leaderboard")
        lines += [f"![leaderboard {task}]({name})", ""]
    return lines


def profile_section(runs: list[Run], out_dir: Path, plots: bool) -> list[str]:
    """Performance profiles of the finished runs' models over their tasks (NAS-Bench-360's definition), when at
    least two models have results; runs that are not comparable with the published rows are never mixed with them."""
    from .profiles import DEFINITION, performance_profile, plot_profiles, profile_table

    values: dict[str, dict[str, float | None]] = {}
    apart = False
    for run in runs:
        if run.results is None:
            continue
        label = model_label(run.results["model"])
        values.setdefault(label, {})[run.config["task"]] = run.results["summary"]["reported"]["mean"]
        apart |= run.results["reference"]["comparable"].get("method") is None
    tasks = sorted({run.config["task"] for run in runs if run.results is not None})
    if len(values) < 2:
        return []
    profile = performance_profile(values, tasks)
    taus = (1.0, 1.25, 1.5, 2.0, 4.0)
    lines = ["## Performance profiles", "", DEFINITION + " Here: this report's runs among themselves, over "
             f"{', '.join(tasks)}" + (" (runs that are not comparable with the published results: compared with each "
                                       "other only)." if apart else "."), ""]
    lines += md_table(["model"] + [f"ρ({t:g})" for t in taus] + ["tasks with a result"], profile_table(profile, taus))
    lines.append("")
    if plots:
        plot_profiles(profile, out_dir / "profile-runs.png", title="Performance profiles of this report's runs")
        lines += ["![performance profiles](profile-runs.png)", ""]
    return lines
