"""The report of a suite directory (`nb360 suite`): methods × tasks beside the published rows, performance
profiles, honest per-task leaderboards and every unit, as report.md and one self-contained report.html."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .. import __version__
from .document import Block, Bullets, Cell, Heading, Image, Para, Table, to_markdown
from .format import mean_std, num, slug
from .html import write_html
from .leaderboard import group_of, plot_leaderboard, seeds_text
from .profiles import DEFINITION, performance_profile, plot_profiles, profile_table

TAUS = (1.0, 1.1, 1.25, 1.5, 2.0, 4.0)


def _cell_text(c: dict[str, Any]) -> str:
    if c["n"] == 0:
        if c["status"]["skipped"]:
            return "skipped"
        if c["status"]["failed"]:
            return "failed"
        return "pending"
    text = mean_std(c["mean"], c["std"], c["n"])
    return text if c["n"] == 1 else f"{text} ({seeds_text(c['n'])})"


def _cell_title(c: dict[str, Any], out: Path) -> str:
    if c["n"] == 0:
        reason = c.get("skipped_reason") or ", ".join(f"{v} {k}" for k, v in c["status"].items() if v)
        return f"no result: {reason}"
    facts = [f"nb360 suite, seeds {', '.join(map(str, c['seeds']))}: " + ", ".join(num(v) for v in c["values"]),
             f"data: {', '.join(c['data'])}", "protocol: " + ("shortened" if c["shortened"] else "reference")]
    if c["comparable"]:
        facts.append(f"comparable with the published {' / '.join(c['published_row'])} row")
    else:
        facts.append("NOT comparable with the published results: " + ", ".join(c["not_comparable_because"]))
    facts.append(f"units: {out}/units/{c['method']}/{c['task']}/seed-*/")
    return "; ".join(facts)


def _methods_table(results: dict[str, Any], suite_dir: Path) -> Table:
    tasks = results["spec"]["tasks"]
    by = {(c["method"], c["task"]): c for c in results["cells"]}
    rows = []
    for method in results["spec"]["methods"]:
        row: list[Cell | str] = [Cell(method, title=results["methods"][method]["label"])]
        for task in tasks:
            c = by[(method, task)]
            css = "missing" if c["n"] == 0 else ("comparable" if c["comparable"] else "apart")
            row.append(Cell(_cell_text(c), title=_cell_title(c, suite_dir), sort=c["mean"], css=css))
        rows.append(row)
    header = ["method"] + [f"{results['published'][t]['title']} ({results['published'][t]['metric']})" for t in tasks]
    return Table(header, rows, notes=["Orange cells are not comparable with the published results (hover for why: "
                                      "generated or fixture data, a shortened protocol, no published row); blue cells "
                                      "are; 'n seeds' says how many seeds a cell averages (one seed: no ±)."])


def _published_values(results: dict[str, Any], tasks: list[str]) -> dict[str, dict[str, float | None]]:
    values: dict[str, dict[str, float | None]] = {}
    for task in tasks:
        for row in results["published"][task]["rows"]:
            values.setdefault(f"{row['method']} / {row['variant']}", {})[task] = row.get("value")
    return values


def _published_table(results: dict[str, Any]) -> Table:
    tasks = results["spec"]["tasks"]
    rows = []
    names: list[str] = []
    for task in tasks:
        for row in results["published"][task]["rows"]:
            name = f"{row['method']} / {row['variant']}"
            if name not in names:
                names.append(name)
    for name in names:
        out: list[Cell | str] = [name]
        for task in tasks:
            pub = results["published"][task]
            row = next((r for r in pub["rows"] if f"{r['method']} / {r['variant']}" == name), None)
            if row is None or row.get("value") is None:
                out.append(Cell((row or {}).get("note") or "n/a", css="missing"))
            else:
                out.append(Cell(mean_std(row["value"], row.get("std")), title=f"{pub['source']}; {pub['units']}",
                                sort=row["value"], css="published"))
        rows.append(out)
    return Table(["published row"] + [results["published"][t]["title"] for t in tasks], rows,
                 notes=[f"{results['published'][t]['title']}: {results['published'][t]['units']}" for t in tasks])


def _profile_blocks(name: str, title: str, values: dict[str, dict[str, float | None]], tasks: list[str],
                    out: Path, plots: bool, note: str) -> list[Block]:
    usable = {m: v for m, v in values.items() if any(v.get(t) is not None for t in tasks)}
    if len(usable) < 2:
        return [Heading(3, title), Para(f"Not drawn: fewer than two methods have a result ({note}).")]
    profile = performance_profile(usable, tasks)
    blocks: list[Block] = [Heading(3, title), Para(note)]
    blocks.append(Table(["method"] + [f"ρ({t:g})" for t in TAUS] + ["tasks with a result"],
                        [[Cell(r[0])] + [Cell(x, sort=float(x)) for x in r[1:-1]] + [Cell(r[-1])]
                         for r in profile_table(profile, TAUS)]))
    if plots:
        file = f"profile-{name}.png"
        plot_profiles(profile, out / file, title=title)
        blocks.append(Image(file, f"performance profiles: {title}"))
    ratios = [[Cell(m)] + [Cell("∞" if math.isinf(profile["ratios"][m][t]) else f"{profile['ratios'][m][t]:.3g}",
                                sort=None if math.isinf(profile["ratios"][m][t]) else profile["ratios"][m][t])
                           for t in tasks] for m in profile["methods"]]
    blocks.append(Table(["method"] + tasks, ratios, caption="The ratios r = error / best error on each task:"))
    return blocks


def _leaderboard_blocks(results: dict[str, Any], task: str, out: Path, plots: bool) -> list[Block]:
    pub = results["published"][task]
    entries: list[dict[str, Any]] = []
    for c in results["cells"]:
        if c["task"] != task or c["n"] == 0:
            continue
        entries.append({"kind": "run", "label": f"nb360 {c['method']}", "run": None,
                        "value": c["mean"], "std": c["std"], "seeds": c["n"], "comparable": c["comparable"],
                        "why_apart": ", ".join(c.get("not_comparable_because") or []) or None,
                        "source": f"nb360 suite units {c['method']}/{task}"})
    for row in pub["rows"]:
        entries.append({"kind": "reference", "label": f"{row['method']} / {row['variant']}", "value": row.get("value"),
                        "std": row.get("std"), "seeds": None, "note": row.get("note", ""), "source": pub["source"]})
    entries.sort(key=lambda e: (e["value"] is None, e["value"] if e["value"] is not None else 0.0))
    rows = []
    for group, heading in (("published", "published"), ("comparable", "comparable run"), ("apart", "NOT comparable")):
        rank = 0
        for e in (e for e in entries if group_of(e) == group):
            rank += e["value"] is not None
            value = mean_std(e["value"], e["std"], e["seeds"]) if e["value"] is not None else e.get("note") or "n/a"
            rows.append([Cell(str(rank) if e["value"] is not None else "", sort=rank or None),
                         Cell(heading + (f" ({e['why_apart']})" if group == "apart" else ""), css=group),
                         Cell(e["label"]), Cell(value, title=e["source"], sort=e["value"]),
                         Cell(seeds_text(e["seeds"]) if e["seeds"] is not None else "3 (published)")])
    blocks: list[Block] = [Heading(3, f"{pub['title']} ({task})"),
                           Table(["rank in group", "group", "method", "value", "seeds"], rows,
                                 caption=f"{pub['metric']}, lower is better. Published: {pub['source']}.")]
    if plots and any(e["value"] is not None for e in entries):
        file = f"leaderboard-{slug(task)}.png"
        plot_leaderboard(entries, out / file, units=pub["units"] or "", metric=pub["metric"],
                         title=f"{pub['title']}: leaderboard")
        blocks.append(Image(file, f"leaderboard {task}: published rows and comparable runs in the first panel, "
                                  "runs that are not comparable in their own panel"))
    return blocks


def _units_table(results: dict[str, Any]) -> Table:
    rows = []
    for u in results["units"]:
        ev = u.get("evaluate") or {}
        seconds = (u.get("seconds") or {}).get("total")
        status = u.get("status", "pending")
        detail = u.get("reason") or u.get("error") or ""
        rows.append([u["method"], u["task"], Cell(str(u["seed"]), sort=u["seed"]), Cell(status, title=detail or None),
                     Cell(num(ev.get("reported")), sort=ev.get("reported")),
                     Cell(f"{seconds:.1f}" if seconds is not None else "", sort=seconds)])
    return Table(["method", "task", "seed", "status", "test (reported form)", "seconds"], rows)


def suite_blocks(results: dict[str, Any], suite_dir: Path, out: Path, plots: bool) -> list[Block]:
    """The report's blocks from a suite's results.json."""
    spec = results["spec"]
    tasks = spec["tasks"]
    counts = {s: sum(u.get("status") == s for u in results["units"]) for s in ("done", "skipped", "failed", "pending")}
    compute = sum((u.get("seconds") or {}).get("total") or 0.0 for u in results["units"])
    blocks: list[Block] = [
        Heading(1, "nb360 suite report"),
        Para(f"Written by nb360 {__version__} from the suite `{suite_dir}` (run by nb360 {results.get('nb360')}): "
             f"{len(spec['methods'])} methods × {len(tasks)} tasks × {len(spec['seeds'])} seeds "
             f"({', '.join(map(str, spec['seeds']))}) on `{spec['data_root']}`, device {spec['device']}; units: "
             f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed, {counts['pending']} "
             f"pending; {compute:.0f} s of unit time."),
    ]
    if results["shortened"]:
        blocks.append(Para("**Shortened protocols** (" + ", ".join("--" + o.replace("_", "-") for o in
                                                                   results["shortened"]) +
                           "): no result of this suite is comparable with the published ones; they are shown apart."))
    blocks += [Heading(2, "Methods × tasks"),
               Para("Test metric in the reported, lower-is-better form (1 − x for mAP, F1 and AUROC), mean ± std "
                    "(population std over seeds) of each method on each task; hover a cell for its seeds, data, "
                    "protocol and units."),
               _methods_table(results, suite_dir),
               Heading(2, "Published results beside them"),
               Para("NAS-Bench-360's table for the same tasks, each number as its task card records it (source on "
                    "hover and under the table; mean ± std over three seeds)."),
               _published_table(results),
               Heading(2, "Performance profiles"), Para(DEFINITION)]
    all_tasks = sorted({t for t in results.get("all_published", {})} or set(tasks))
    published = _published_values({"published": results.get("all_published") or results["published"]}, all_tasks)
    blocks += _profile_blocks("published", f"Published rows over {len(all_tasks)} tasks", published, all_tasks, out,
                              plots, "NAS-Bench-360's published numbers only (its README table, three seeds each).")
    ours = {c["method"]: {} for c in results["cells"]}
    for c in results["cells"]:
        ours[c["method"]][c["task"]] = c["mean"]
    blocks += _profile_blocks("suite", f"This suite's methods over its {len(tasks)} tasks", ours, tasks, out, plots,
                              "This suite's runs among themselves: same data, seeds and protocols for every method, "
                              "so they compare with each other, not with the published numbers"
                              + (" (shortened protocols, fixture or generated data)." if any(
                                  not c.get("comparable", False) for c in results["cells"] if c["n"]) else "."))
    comparable = {c["method"]: {} for c in results["cells"] if c.get("comparable")}
    for c in results["cells"]:
        if c.get("comparable"):
            comparable[c["method"]][c["task"]] = c["mean"]
    if comparable:
        joint = {**_published_values(results, tasks), **{f"nb360 {m}": v for m, v in comparable.items()}}
        blocks += _profile_blocks("joint", "Published rows and this suite's comparable runs", joint, tasks, out, plots,
                                  "Only runs with the published protocol on the released data join the published rows.")
    blocks.append(Heading(2, "Leaderboards per task"))
    for task in tasks:
        blocks += _leaderboard_blocks(results, task, out, plots)
    blocks += [Heading(2, "Units"), _units_table(results), Heading(2, "Provenance"),
               Bullets([f"suite settings: `{suite_dir}/suite.json`; every unit's search and retrain run directories "
                        f"under `{suite_dir}/units/` (config.json, manifest.json with data sha256, logs)",
                        f"collected: `{suite_dir}/results.json`",
                        "published rows: the task cards (`tasks/*.toml`, [reference_results] with their source)"])]
    return blocks


def write_suite_report(suite_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                       plots: bool = True) -> Path:
    """Collect the suite in `suite_dir` and write report.md and report.html (with PNG plots) into `out_dir`."""
    from ..suite.collect import collect
    from ..tasks import list_tasks

    suite_dir = Path(suite_dir)
    results = collect(suite_dir)
    results["all_published"] = {}
    for card in list_tasks("nb360"):  # NAS-Bench-360's published table: its ten tasks (not the E2RNAS suite)
        refs = card.reference_results
        results["all_published"][card.name] = {"title": card.title, "rows": refs.get("rows", [])}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = suite_blocks(results, suite_dir, out, plots)
    path = out / "report.md"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(to_markdown(blocks), encoding="utf-8")
    os.replace(tmp, path)
    write_html(blocks, out, title=f"nb360 suite report: {suite_dir.name}")
    return path
