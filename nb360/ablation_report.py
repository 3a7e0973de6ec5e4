"""The ablation's summary (ablation.json), Pareto front, plots and REPORT.md (see `nb360.ablation`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import __version__

STRONGEST = ("pgd-strong", "pgd", "fgsm")  # the robust error is the task metric under the strongest attack run


def _figures(run: dict[str, Any], metric: str) -> dict[str, Any]:
    """(error, robust error, params) of one run: after retraining when it was retrained, else inherited weights."""
    retrain = run.get("retrain")
    if retrain:
        robust = retrain.get("robustness") or {}
        row = (robust.get("per_seed") or [{}])[0]
        attack = next((a for a in STRONGEST if a in row), None)
        return {"error": retrain["per_seed"][0]["test"].get("reported"),
                "robust_error": row[attack].get("reported") if attack else None, "attack": attack,
                "params": retrain["model"].get("params"), "figures_from": "retrained, test split"}
    scores = run["search_evaluation"]["scores"]
    return {"error": scores["clean"].get("reported", scores["clean"].get(metric)),
            "robust_error": (scores.get("pgd") or {}).get("reported"), "attack": "pgd" if "pgd" in scores else None,
            "params": run["search_evaluation"]["params_M"] * 1e6,
            "figures_from": "inherited supernet weights, validation split (a one-shot proxy, no retraining)"}


def pareto_front(points: list[tuple[float, ...]]) -> list[bool]:
    """True for points no other point dominates (all coordinates <=, one <; every coordinate minimised)."""
    arr = np.asarray(points, dtype=float)
    out = []
    for p in arr:
        dominated = bool(((arr <= p).all(axis=1) & (arr < p).any(axis=1)).any())
        out.append(not dominated)
    return out


def _ms(values: list[float]) -> dict[str, Any]:
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return {"mean": float(np.mean(finite)) if finite else None, "std": float(np.std(finite)) if finite else None,
            "n": len(finite)}


def summarize(cfg: Any, runs: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """ablation.json: every run's figures, per-subset mean ± std, the Pareto front, settings and data."""
    from .ablation import FORMAT, label
    from .tasks import get_task

    card = get_task(cfg.task)
    rows = []
    for run in runs:
        fig = _figures(run, card.metric.name)
        lam = {k: _ms([v for v in vals if v is not None])["mean"] for k, vals in run["lambda"].items()}
        rows.append({**{k: run[k] for k in ("subset", "objectives", "seed", "genotype", "arch_index", "search_dir")},
                     "retrain_dir": run.get("retrain_dir"), **fig, "mean_lambda": lam, "lambda": run["lambda"]})
    complete = [i for i, r in enumerate(rows) if None not in (r["error"], r["robust_error"], r["params"])]
    front = pareto_front([(rows[i]["error"], rows[i]["robust_error"], rows[i]["params"]) for i in complete])
    for i, r in enumerate(rows):
        r["pareto"] = bool(front[complete.index(i)]) if i in complete else None
    subsets = {}
    for subset in cfg.subsets:
        mine = [r for r in rows if r["subset"] == label(subset)]
        subsets[label(subset)] = {k: _ms([r[k] for r in mine]) for k in ("error", "robust_error", "params")}
    return {"format": FORMAT, "nb360": __version__, "task": cfg.task, "title": card.title,
            "metric": {"name": card.metric.name, "reported_as": card.metric.reported_as},
            "settings": {k: v for k, v in vars(cfg).items() if k != "out"}, "data": data, "runs": rows,
            "subsets": subsets, "std": "population standard deviation over seeds (numpy std, ddof=0)",
            "pareto": "minimise error, robust error and parameters together; front over the runs"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _caveat(summary: dict[str, Any]) -> str:
    s = summary["settings"]
    data = "GENERATED stand-in data" if summary["data"]["source"] == "generated" else "the given data"
    how = (f"search {s['epochs']} epochs, retrained {s['retrain_epochs']} epochs (SHORTENED)" if s["retrain_epochs"]
           else f"search {s['epochs']} epochs, inherited weights (one-shot proxy)")
    return f"{data}; {how}; {len(s['seeds'])} seed(s) per subset"


def plot_pareto(summary: dict[str, Any], path: Path) -> None:
    """Error vs robust error (size ∝ parameters) and parameters vs robust error; the Pareto front outlined."""
    plt = _pyplot()
    rows = [r for r in summary["runs"] if r["pareto"] is not None]
    subsets = ["+".join(subset) for subset in summary["settings"]["subsets"]]  # the run order (ablation.json sorts)
    colours = {name: plt.get_cmap("tab10")(i) for i, name in enumerate(subsets)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    params = np.array([r["params"] for r in rows], dtype=float)
    scale = {id(r): 40 + 160 * (r["params"] - params.min()) / max(np.ptp(params), 1e-12) for r in rows} if rows else {}
    groups: dict[tuple[float, ...], list[dict[str, Any]]] = {}  # runs that found the same network coincide
    for r in rows:
        groups.setdefault((round(r["error"], 12), round(r["robust_error"], 12), r["params"]), []).append(r)
    for members in groups.values():
        n = len(members)
        for k, r in enumerate(members):  # concentric markers: every subset's colour stays visible
            shrink = (n - k) / n
            edge = "black" if r["pareto"] else "none"
            for ax, x, base in ((left, r["error"], scale[id(r)]), (right, r["params"] / 1e6, 60)):
                ax.scatter(x, r["robust_error"], s=base * shrink, color=colours[r["subset"]], edgecolors=edge,
                           linewidths=1.2, zorder=2 + k)
        text = "; ".join(sorted({f"s{r['seed']}" for r in members})) + (f" ({n} runs)" if n > 1 else "")
        for ax, x in ((left, members[0]["error"]), (right, members[0]["params"] / 1e6)):
            ax.annotate(text, (x, members[0]["robust_error"]), fontsize=6, xytext=(4, 4), textcoords="offset points")
    for name in subsets:
        left.scatter([], [], color=colours[name], label=name)
    left.scatter([], [], facecolors="none", edgecolors="black", label="Pareto front")
    metric = summary["metric"]["name"]
    attack = next((r["attack"] for r in rows if r["attack"]), "attack")
    left.set_xlabel(f"{metric} (clean, lower is better); marker size ∝ parameters", fontsize=8)
    left.set_ylabel(f"robust {metric} under {attack} (lower is better)", fontsize=8)
    right.set_xlabel("parameters (M)", fontsize=8)
    left.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(f"E2RNAS objective ablation on {summary['title']}: {_caveat(summary)}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_lambdas(summary: dict[str, Any], path: Path) -> bool:
    """MGDA weights λ per architecture step, one panel per multi-objective subset, one line style per seed."""
    multi = ["+".join(subset) for subset in summary["settings"]["subsets"] if len(subset) > 1]
    if not multi:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(multi), figsize=(3.6 * len(multi) + 0.5, 3.2), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, name in zip(axes[0], multi):
        for k, r in enumerate(r for r in summary["runs"] if r["subset"] == name):
            for j, (objective, values) in enumerate(r["lambda"].items()):
                ax.plot(range(1, len(values) + 1), values, styles[k % len(styles)],
                        color=plt.get_cmap("tab10")(j), label=f"{objective} (seed {r['seed']})", linewidth=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("architecture step", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("λ (MGDA weight)", fontsize=8)
    fig.suptitle(f"MGDA weights per step ({_caveat(summary)})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _num(v: Any) -> str:
    return "n/a" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def write_report(out: Path, summary: dict[str, Any]) -> Path:
    """REPORT.md with the per-subset table, every run, the Pareto front and the plots."""
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    plot_pareto(summary, plots / "pareto.png")
    has_lambda = plot_lambdas(summary, plots / "lambda.png")
    metric = summary["metric"]
    rows = summary["runs"]
    lines = [f"# E2RNAS objective ablation: {summary['title']} ({summary['task']})", "",
             f"nb360 {summary['nb360']}. {_caveat(summary)}. Figures: {rows[0]['figures_from'] if rows else 'none'}. "
             f"Error = {metric['reported_as']} (reported, lower is better); robust error = the same metric under "
             f"the attack named per run; parameters of the evaluated network.", "",
             "## Per objective subset (mean ± std over seeds)", "",
             "| objectives | seeds | error | robust error | parameters |", "|---|---|---|---|---|"]
    for name in ("+".join(subset) for subset in summary["settings"]["subsets"]):
        s = summary["subsets"][name]
        cells = [f"{_num(s[k]['mean'])} ± {_num(s[k]['std'])}" for k in ("error", "robust_error", "params")]
        lines.append(f"| {name} | {s['error']['n']} | " + " | ".join(cells) + " |")
    lines += ["", "## Every run", "", "| objectives | seed | arch | error | robust error | attack | parameters | "
              "Pareto | mean λ |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lam = ", ".join(f"{k} {_num(v)}" for k, v in r["mean_lambda"].items())
        arch = r["arch_index"] if r["arch_index"] is not None else "genotype"
        lines.append(f"| {r['subset']} | {r['seed']} | {arch} | {_num(r['error'])} | {_num(r['robust_error'])} | "
                     f"{r['attack'] or 'n/a'} | {_num(r['params'])} | {'yes' if r['pareto'] else 'no'} | {lam} |")
    distinct = len({(r["arch_index"], r["genotype"]) for r in rows})
    lines += ["", f"{distinct} distinct architectures among {len(rows)} runs (runs that found the same network "
                  "share one point of the plot, drawn as concentric markers). With L2-normalised gradients MGDA "
                  "weighs two objectives 0.5 / 0.5 at every step (the min-norm point between two unit vectors is "
                  "their midpoint); only three or more objectives move λ.", "",
              "![Pareto: error vs robust error vs parameters](plots/pareto.png)", ""]
    if has_lambda:
        lines += ["![λ trajectories](plots/lambda.png)", ""]
    lines += [f"Data: {summary['data']}. Search run directories: `search/<objectives>/seed-<s>/`; retraining: "
              "`retrain/<objectives>/seed-<s>/` (`nb360 report` reads them). Rerun the same `nb360 ablate` command to "
              "continue an interrupted ablation.", ""]
    path = out / "REPORT.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
