"""Weight-sharing search on a task: DARTS, PC-DARTS, GAEA and E2RNAS on the NB201 or DARTS space, with run directories.

    from nb360.search.supernet import default_config, run_search
    cfg = default_config("e2rnas", "ninapro", data_root="data", epochs=50)            # NB201 space
    cfg = default_config("gaea", "ninapro", space="darts", data_root="data")         # GAEA PC-DARTS, DARTS space
    result = run_search(cfg, "runs/e2rnas-ninapro")
    result.genotype, result.evaluation

A run directory holds config.json, checkpoint.pt (after every epoch; `resume=True` continues it),
steps.jsonl (per architecture step: objectives, λ, gradient norms, losses), lambda.csv,
epochs.jsonl (per epoch: losses, validation metric, genotype, architecture weights, expected
size), genotype.json, result.json and plots/. In the DARTS space the genotype is DARTS's text
(`nb360.space.darts`) and sizes are those of the 20-cell evaluation network. The found architecture is scored as the
discretised supernet with inherited weights (no retraining) on the validation split: clean, under
FGSM and PGD at the declared ε, and its parameter count; for E2RNAS with `compare_darts` the same
for DARTS run with identical settings, plotted as the accuracy–robustness–size trade-off.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from ...data.collate import collate_for
from ..plots import plot_series, plot_tradeoff
from .config import METHODS, SearchConfig, default_config
from .engine import CHECKPOINT, SearchResult, SupernetSearch
from .evaluate import evaluate_network, headline
from .logs import write_json as _write_json

__all__ = ["METHODS", "SearchConfig", "SearchResult", "SupernetSearch", "default_config", "evaluate_found",
           "run_search"]


def evaluate_found(engine: SupernetSearch, genotype: str) -> dict[str, Any]:
    """Scores of `genotype` as the discretised supernet (inherited weights) on the evaluation split, and its size."""
    cfg = engine.config
    net = engine.net.discretize(genotype).to(engine.device)
    loader = DataLoader(engine.eval_set, batch_size=cfg.batch_size, collate_fn=collate_for(engine.eval_set))
    threat = engine.threat if cfg.eval_attacks else None
    scores = evaluate_network(net, loader, engine.eval_obj, threat, pgd_steps=cfg.pgd_steps, seed=cfg.seed,
                              device=engine.device, input_dims=len(engine.sample_shape) + 1)
    out: dict[str, Any] = {
        "genotype": genotype, "arch_index": engine.arch_index(genotype), "space": engine.space,
        "params_M": engine.param_cost.of(genotype) / 1e6, "scores": scores,
        "split": "val" if engine.eval_set is not engine.arch_set or cfg.arch_data == "val" else "architecture half",
        "protocol": "discretised supernet with inherited weights, no retraining (a one-shot proxy)",
    }
    if engine.space == "darts":
        shape = engine.param_cost.network
        out["params_of"] = f"the DARTS evaluation network ({shape['layers']} cells, C={shape['C']})"
    if "flops" in engine.resources:
        out["flops_M"] = engine.resources["flops"].cost.of(genotype) / 1e6
    if cfg.eval_attacks and threat is None:
        out["attacks"] = f"not run: {engine.card.robustness.get('reason', 'the task card defines no threat model')}"
    elif threat is not None and "pgd" not in scores:
        out["attacks"] = "not run: the evaluation items are not single network inputs"
    elif threat is not None:
        out["attacks"] = {"eps": threat.eps, "space": threat.space, "fgsm": "no random start, step ε",
                          "pgd": f"{cfg.pgd_steps} steps of 2.5ε/{cfg.pgd_steps}, random start"}
    return out


def attack_note(threat: Any) -> str:
    """", PGD at ε=... <unit>" for a plot title (empty without a threat model)."""
    return "" if threat is None else f", PGD at ε={threat.eps:.4g} {threat.space}"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _plots(run_dir: Path, method: str) -> list[str]:
    rows = _read_jsonl(run_dir / "steps.jsonl")
    if not rows:
        return []
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    written = []
    steps = [row for row in rows if row.get("arch_step", True)]  # warm-up rows have no architecture step
    if steps:
        x = [row["step"] for row in steps]
        names = list(steps[0]["lambda"])
        plot_series(x, {n: [row["lambda"][n] for row in steps] for n in names}, plots / "lambda.png",
                    ylabel="λ (MGDA weight)", title=f"{method}: objective weights per architecture step")
        plot_series(x, {n: [row["objectives"][n] for row in steps] for n in names}, plots / "objectives.png",
                    ylabel="objective value", title=f"{method}: upper-level objectives per architecture step")
        written += ["plots/lambda.png", "plots/objectives.png"]
    plot_series([row["step"] for row in rows], {"train loss": [row["train_loss"] for row in rows]},
                plots / "train_loss.png", ylabel="training loss", title=f"{method}: supernet training loss")
    written.append("plots/train_loss.png")
    return written


def _point(label: str, card: Any, evaluation: dict[str, Any]) -> dict[str, Any]:
    scores = evaluation["scores"]
    metric, clean = headline(card, scores["clean"])
    robust = headline(card, scores["pgd"])[1] if "pgd" in scores else None
    return {"label": label, "size": evaluation["params_M"], "clean": clean, "robust": robust, "metric": metric,
            "genotype": evaluation["genotype"]}


def run_search(config: SearchConfig, run_dir: str | os.PathLike, *, resume: bool = False,
               stop_after: int | None = None, progress: bool = True, datasets: dict[str, Any] | None = None,
               card: Any = None, plots: bool = True) -> SearchResult:
    """Run (or resume) a weight-sharing search into `run_dir`; score and plot the found architecture when done."""
    run_dir = Path(run_dir)
    engine = SupernetSearch(config, run_dir, datasets=datasets, card=card, progress=progress)
    result = engine.run(resume=resume, stop_after=stop_after)
    if not result.finished:
        return result
    evaluation = evaluate_found(engine, result.genotype)
    points = [_point(config.method.upper(), engine.card, evaluation)]
    baseline = None
    if config.method == "e2rnas" and config.compare_darts:
        darts_cfg = dataclasses.replace(config, method="darts", objectives=("acc",), compare_darts=False)
        darts_dir = run_dir / "darts-baseline"
        darts = SupernetSearch(darts_cfg, darts_dir, datasets=engine.datasets, card=engine.card, progress=progress)
        darts_result = darts.run(resume=resume and (darts_dir / CHECKPOINT).exists())
        baseline = evaluate_found(darts, darts_result.genotype)
        _write_json(darts_dir / "result.json", {"genotype": darts_result.genotype, "evaluation": baseline})
        points.append(_point("DARTS", engine.card, baseline))
    result.evaluation = evaluation
    files = []
    if plots:
        files = _plots(run_dir, config.method)
        if len(points) > 1 or config.method == "e2rnas":
            (run_dir / "plots").mkdir(exist_ok=True)
            plot_tradeoff(points, run_dir / "plots" / "tradeoff.png", metric=points[0]["metric"],
                          title=f"{config.task}: found architectures (inherited weights, {evaluation['split']} split"
                                f"{attack_note(engine.threat) if config.eval_attacks else ''})")
            files.append("plots/tradeoff.png")
    _write_json(run_dir / "genotype.json", {"genotype": result.genotype, "arch_index": result.arch_index,
                                            "per_epoch": [h["genotype"] for h in result.history]})
    _write_json(run_dir / "result.json", {"method": config.method, "task": config.task, "seed": config.seed,
                                          "epochs": result.epochs_done, "genotype": result.genotype,
                                          "arch_index": result.arch_index, "evaluation": evaluation,
                                          "darts_baseline": baseline, "tradeoff": points, "plots": files,
                                          "device": str(engine.device), "torch": torch.__version__})
    return result
