"""The report's robustness section: a run's adversarial evaluation (threat model, attacks, paper row) and its plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .format import md_table, mean_std, num, slug
from .plots import _pyplot
from .runs import Run


def robustness_section(run: Run, index: int, out_dir: Path, plots: bool) -> list[str]:
    """Markdown for the run's `robustness` results (nothing when the run was not attacked)."""
    results = run.results or {}
    r = results.get("robustness")
    if not r:
        return []
    metric = results["metric"]["name"]
    t = r["threat"]
    lines = [f"### Robustness of `{run.name}`: attacks on the test set after retraining", "",
             f"- **threat model**: L∞ ε = {t['eps_text']} in {t['unit']} units"
             f"{'' if t['card_default'] else ' (changed from the card)'}; {t['conversion']}; source: {t['source']}",
             f"- **perturbed**: {t['perturb']}", f"- **robust metric**: {r['robust_metric']}",
             f"- **attacked**: {r['samples']}; {len(r['per_seed'])} seed(s), mean ± std ({r['std']})", ""]
    rows = []
    for name, entry in r["summary"].items():
        settings = "no attack" if name == "clean" else r["attacks"][name]["description"]
        seeds = ", ".join(num(row[name].get("reported")) for row in r["per_seed"] if name in row)
        acc = entry.get("accuracy")
        rows.append([f"**{name}**", settings, mean_std(acc["mean"], acc["std"]) if acc else "n/a",
                     mean_std(entry["reported"]["mean"], entry["reported"]["std"]), seeds])
    lines += md_table(["attack", "settings", "accuracy (%)", f"{metric} (reported form)", "per seed"], rows)
    gap = r.get("overstatement")
    if gap:
        lines += ["", f"The standard strong attack (pgd-strong) is worse than the authors' PGD by "
                      f"{num(gap['reported_difference'])} ({metric}, reported form): how much the weak attack overstates "
                      "robustness."]
    ref = r.get("reference")
    if ref:
        ref_rows = [[f"{row['method']} / {row['variant']}", *(num(row.get(k)) for k in ("clean", "fgsm", "pgd",
                                                                                        "params_m")),
                     row.get("note", "")] for row in ref["rows"]]
        lines += ["", f"Published robust results ({ref['units']}); source: {ref['source']}. Their protocol: "
                      f"{ref['protocol']}. This run: **{ref['note_on_this_run']}**.", ""]
        lines += md_table(["method / variant", "clean", "FGSM", "PGD", "params (M)", "note"], ref_rows)
    lines.append("")
    if plots:
        name = f"robustness-{index}-{slug(run.name)}.png"
        short = " (SHORTENED protocol)" if results["protocol"].get("shortened") else ""
        plot_robustness(r, metric, out_dir / name, title=f"{run.name}: {results['title']} under attack{short}")
        lines += [f"![robustness of {run.name}]({name})", ""]
    return lines


def plot_robustness(r: dict[str, Any], metric: str, path: Path, *, title: str) -> None:
    """Bars of the reported metric (mean ± std over seeds) clean and under each attack, seeds as dots."""
    plt = _pyplot()
    names = list(r["summary"])
    means = [r["summary"][n]["reported"]["mean"] for n in names]
    stds = [r["summary"][n]["reported"]["std"] for n in names]
    fig, ax = plt.subplots(figsize=(1.4 * len(names) + 2.5, 3.4))
    x = np.arange(len(names))
    colours = ["tab:green"] + ["tab:orange" if n != "pgd-strong" else "tab:red" for n in names[1:]]
    ax.bar(x, means, yerr=stds, color=colours, capsize=4, alpha=0.85)
    for i, n in enumerate(names):
        values = [row[n]["reported"] for row in r["per_seed"] if n in row]
        ax.scatter([i] * len(values), values, color="black", s=10, zorder=3)
    n_seeds = len(r["per_seed"])
    ax.set_xticks(x, names)
    ax.set_ylabel(f"{metric}, reported form (lower is better)", fontsize=8)
    t = r["threat"]
    ax.set_title(f"{title}\nε = {t['eps_text']} ({t['unit']}), {n_seeds} seed(s), {r['samples']}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
