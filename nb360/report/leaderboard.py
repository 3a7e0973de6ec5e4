"""The honest leaderboard: published results and nb360 runs, drawn so no bar suggests a comparison the data lacks.

Rules (issue 17):
- A run is drawn beside the published rows only when its results say a published row is comparable
  (same model and protocol, the released data: `results.json` reference.comparable). Runs on
  generated or fixture data, with a shortened protocol or another model go to a separate panel with
  its own axis, title and label: they are never on the published rows' axis.
- Every bar's label says how many seeds it averages; a one-seed bar has no error bar (and tables
  print no ±); axis labels say what the numbers are.
`plot_leaderboard` returns what it drew, read back from the figure's axes, so tests check the figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

GROUPS = ("published", "comparable", "apart")
COLOURS = {"published": "0.6", "comparable": "tab:blue", "apart": "tab:orange"}


def group_of(entry: dict[str, Any]) -> str:
    """published (a reference row), comparable (a run the results call comparable) or apart (any other run)."""
    if entry["kind"] == "reference":
        return "published"
    return "comparable" if entry.get("comparable") else "apart"


def seeds_text(n: Any) -> str:
    """'3 seeds', '1 seed', or 'published: 3 seeds' style counts for labels."""
    if n is None:
        return "seeds n/a"
    return f"{n} seed{'s' if n != 1 else ''}"


def _bar_label(entry: dict[str, Any]) -> str:
    if entry["kind"] == "reference":
        return f"{entry['label']} (published, 3 seeds)"
    run = f" [{entry['run']}]" if entry.get("run") else ""
    return f"{entry['label']}{run} ({seeds_text(entry.get('seeds'))})"


def _panel(ax: Any, entries: list[dict[str, Any]], *, title: str, xlabel: str) -> None:
    y = np.arange(len(entries))[::-1]
    values = [e["value"] for e in entries]
    errs = [(e["std"] or 0.0) if (e["kind"] == "reference" or (e.get("seeds") or 0) > 1) else 0.0 for e in entries]
    colours = [COLOURS[group_of(e)] for e in entries]
    hatches = ["//" if group_of(e) == "comparable" else "" for e in entries]
    bars = ax.barh(y, values, xerr=errs, color=colours, error_kw={"elinewidth": 1, "capsize": 3})
    for bar, hatch in zip(bars, hatches):
        bar.set_hatch(hatch)
    ax.set_yticks(y, [_bar_label(e) for e in entries], fontsize=7)
    import textwrap

    ax.set_title("\n".join(textwrap.wrap(title, 100)), fontsize=8)
    ax.set_xlabel(xlabel, fontsize=7)
    ax.grid(axis="x", alpha=0.3)


def plot_leaderboard(entries: list[dict[str, Any]], path: Path, *, units: str, metric: str,
                     title: str) -> dict[str, Any]:
    """Draw the published rows (with comparable runs) and the other runs in separate panels; return the drawn data.

    `units`: the published rows' units as the card states them; `metric`: what the runs' numbers are
    (the card's reported form). Returns {"panels": [{"title", "xlabel", "bars": [{"label", "value"}]}]}
    read from the figure.
    """
    from matplotlib.patches import Patch

    from .plots import _pyplot

    plt = _pyplot()
    shown = sorted((e for e in entries if e["value"] is not None), key=lambda e: e["value"])  # best first
    main = [e for e in shown if group_of(e) in ("published", "comparable")]
    apart = [e for e in shown if group_of(e) == "apart"]
    panels = [p for p in (main, apart) if p]
    heights = [0.36 * len(p) + 1.2 for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8.2, sum(heights) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    axes = [a[0] for a in axes]
    k = 0
    if main:
        has_runs = any(group_of(e) == "comparable" for e in main)
        _panel(axes[k], main, title="Published results (NAS-Bench-360)" + (
            " and nb360 runs with the same model, protocol and released data" if has_runs else ""),
            xlabel=f"{units}" + ("; nb360 runs: mean ± std over the seeds in each label" if has_runs else ""))
        k += 1
    if apart:
        reasons = sorted({r.strip() for e in apart for r in (e.get("why_apart") or "not comparable").split(",")})
        _panel(axes[k], apart, title="nb360 runs NOT comparable with the published results: " + "; ".join(reasons),
               xlabel=f"{metric}\n(this report's runs; error bars: std over seeds, none for one seed)")
    handles = [Patch(color=COLOURS[g], label=lbl, hatch="//" if g == "comparable" else "") for g, lbl in
               (("published", "published (NAS-Bench-360 README)"),
                ("comparable", "nb360 run, comparable with the published rows"),
                ("apart", "nb360 run, not comparable (own panel and axis)"))
               if any(group_of(e) == g for e in shown)]
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(path, dpi=110)
    drawn = {"panels": [_drawn(ax) for ax in axes]}
    plt.close(fig)
    return drawn


def _drawn(ax: Any) -> dict[str, Any]:
    """A panel's title, x label and bars (label at the bar's height, width = value), top to bottom."""
    labels = {round(float(t.get_position()[1]), 6): t.get_text() for t in ax.get_yticklabels()}
    bars = []
    for bar in ax.patches:
        centre = round(float(bar.get_y() + bar.get_height() / 2), 6)
        bars.append((centre, {"label": labels.get(centre, ""), "value": float(bar.get_width())}))
    return {"title": ax.get_title(), "xlabel": ax.get_xlabel(),
            "bars": [b for _, b in sorted(bars, key=lambda x: -x[0])]}
