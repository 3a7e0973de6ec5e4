"""The model to retrain (NB201 cell, DARTS genotype or backbone) and its training protocol, as JSON-ready data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DataError, InputError
from ..space import nb201
from ..tasks import TaskCard
from .spec import EvalSpec


# ----------------------------------------------------------------------------- model and protocol
def read_genotype(value: str) -> str:
    """DARTS genotype text from text, JSON, a published name, or a file (its text or JSON, e.g. a search's
    genotype.json / result.json with a "genotype" entry)."""
    from ..space import darts

    text = value
    path = Path(value)
    looks_like_path = not value.lstrip().startswith(("Genotype", "{")) and value.strip() not in darts.PUBLISHED
    if looks_like_path:
        if not path.is_file():
            raise InputError(f"--genotype {value!r} is neither a genotype (DARTS text, JSON, or a published name: "
                             f"{', '.join(darts.PUBLISHED)}) nor an existing file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read the genotype file {path}: {exc}") from exc
        if text.lstrip().startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"the genotype file {path} is not valid JSON ({exc})") from exc
            if isinstance(data, dict) and isinstance(data.get("genotype"), str):
                text = data["genotype"]  # a search run's genotype.json / result.json
    return darts.to_str(darts.parse(text))


def model_description(card: TaskCard, spec: EvalSpec) -> dict[str, Any]:
    """The model as JSON-ready data: enough to rebuild it exactly."""
    if spec.arch is not None:
        arch: Any = spec.arch
        if isinstance(arch, str) and arch.strip().lstrip("-").isdigit():
            arch = int(arch)
        return {"kind": "nb201", "arch": nb201.to_str(arch), "index": nb201.index_of(arch),
                "C": 16 if spec.channels is None else spec.channels, "N": spec.cells}
    if spec.genotype is not None:
        settings = _darts_settings(card, spec.protocol)
        auxiliary = settings["auxiliary_weight"] > 0
        return {"kind": "darts", "genotype": read_genotype(spec.genotype),
                "C": settings["C"] if spec.channels is None else spec.channels,
                "layers": settings["layers"] if spec.layers is None else spec.layers, "auxiliary": auxiliary}
    from ..models import default_backbone

    name = spec.backbone
    if name in ("wrn-asha", "xgboost"):
        return _baseline_description(card, spec)
    if name == "default":
        name = default_backbone(card.topology)
    if name == "dense-wrn":
        if card.topology != "dense2d":
            raise InputError(f"--backbone dense-wrn is the WRN for dense tasks; {card.name} is {card.topology}: use "
                             f"--backbone {default_backbone(card.topology)}")
        name = "wrn"
    if name == "wrn" and card.topology == "dense2d":
        return {"kind": "backbone", "backbone": "dense-wrn", "options": {}}
    options = {"pooling": spec.pooling} if name == "wrn" else {}
    return {"kind": "backbone", "backbone": name, "options": options}


def _baseline_description(card: TaskCard, spec: EvalSpec) -> dict[str, Any]:
    """wrn-asha (the card's backbone, tuned per seed by ASHA) or xgboost (trees on the flattened inputs)."""
    from dataclasses import replace

    if spec.backbone == "xgboost":
        from .xgboost_baseline import model_description as xgb_description

        return xgb_description(card, spec)
    from .asha import tuning_description

    base = model_description(card, replace(spec, backbone="default", baseline_options={}))
    epochs = spec.epochs if spec.epochs is not None else card.protocol().epochs
    return {"kind": "backbone", "backbone": "wrn-asha", "base": base, "options": dict(base["options"]),
            "tuning": tuning_description(card.name, epochs, spec.baseline_options)}


def build_model(card: TaskCard, model: dict[str, Any]) -> Any:
    """Build the network a `model_description` describes (wrn-asha: its untuned backbone)."""
    from ..models import build

    if model.get("backbone") == "wrn-asha":
        model = model["base"]
    if model["kind"] == "xgboost":
        raise InputError("XGBoost is no network: nb360.evaluate.xgboost_baseline trains it")

    if model["kind"] == "nb201":
        return build(card, arch=model["arch"], C=model["C"], N=model["N"])
    if model["kind"] == "darts":
        return build(card, genotype=model["genotype"], C=model["C"], layers=model["layers"],
                     auxiliary=model["auxiliary"])
    name = "wrn" if model["backbone"] == "dense-wrn" else model["backbone"]
    return build(card, backbone=name, **model["options"])


def model_label(model: dict[str, Any]) -> str:
    """A short human name of a model description."""
    if model["kind"] == "nb201":
        return f"NB201 #{model['index']} (C={model['C']}, N={model['N']})"
    if model["kind"] == "darts":
        aux = ", auxiliary head" if model["auxiliary"] else ""
        return f"DARTS genotype (C={model['C']}, {model['layers']} cells{aux})"
    if model["kind"] == "xgboost":
        return f"XGBoost ({model['settings']['n_estimators']} rounds, depth {model['settings']['max_depth']})"
    if model["backbone"] == "wrn-asha":
        return f"{model['base']['backbone']} + ASHA ({model['tuning']['trials']} trials)"
    options = ", ".join(f"{k}={v}" for k, v in model.get("options", {}).items())
    return model["backbone"] + (f" ({options})" if options else "")


def retrain_protocol(card: TaskCard, epochs: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainConfig fields without the seed, a description with provenance) of the card's protocol.

    `epochs` overrides the card's epoch count; the step milestones then follow the original code's
    rule for other epoch counts (`TrainingProtocol.milestones_for`), and the description says so.
    """
    p = card.protocol()
    if p.schedule == "step" and p.step_every != "epoch":
        raise InputError(f"{card.name}: a step schedule stepped every {p.step_every} is not supported")
    if p.schedule == "cosine" and p.step_every != "iteration":
        raise InputError(f"{card.name}: a cosine schedule stepped every {p.step_every} is not supported")
    run_epochs = p.epochs if epochs is None else epochs
    milestones = p.milestones_for(run_epochs)
    fields = {"epochs": run_epochs, "batch_size": p.batch_size, "lr": p.learning_rate, "momentum": p.momentum,
              "nesterov": p.nesterov, "weight_decay": p.weight_decay, "schedule": p.schedule,
              "milestones": list(milestones), "gamma": p.gamma, "eval_batch_size": p.eval_batch_size}
    if run_epochs == p.epochs:
        rule = "the card's milestones"
    elif p.other_fractions:
        rule = ("the original's rule for other epoch counts: int(f * epochs) for fractions "
                f"{list(p.other_fractions)} (+1 where strict: {list(p.other_strict)})")
    else:
        rule = "nb360's proportional scaling of the card's milestones (the card gives no rule)"
    description = {
        "card_epochs": p.epochs, "epochs": run_epochs, "shortened": run_epochs < p.epochs,
        "changed": run_epochs != p.epochs, "milestone_rule": rule, "step_every": p.step_every,
        "optimizer": card.baseline.get("optimizer", ""), "source": card.baseline.get("source", ""),
        "schedule_source": p.source, "uncertain": list(p.uncertain),
        "split": "retrain: train on train+val, evaluate on test (the card's [splits.retrain])",
        "epoch": "one pass over the retrain training split",
    }
    return fields, description


def resolve_protocol(card: TaskCard, protocol: str | None) -> str:
    """A DARTS evaluation protocol name; None: "darts" (DARTS/E2RNAS's own) on the E2RNAS suite, else "nb360"."""
    if protocol is None:
        return "darts" if card.suite == "e2rnas" else "nb360"
    if protocol == "nb360" and card.suite == "e2rnas":
        raise InputError(f"{card.name} is not a NAS-Bench-360 task, so it has no NAS-Bench-360 GAEA evaluation "
                         "protocol: use --protocol darts (the E2RNAS authors' DARTS/train.py protocol, the default)")
    return protocol


def _darts_settings(card: TaskCard, protocol: str | None) -> dict[str, Any]:
    """The DARTS evaluation protocol's settings for a task (NAS-Bench-360's GAEA evaluation, or DARTS's CIFAR one)."""
    from ..search.supernet.darts_settings import DARTS_EVAL, EVAL_COMMON, task_settings

    protocol = resolve_protocol(card, protocol)
    if protocol == "darts":
        return {**DARTS_EVAL, "lr_horizon": DARTS_EVAL["epochs"], "drop_path_horizon": DARTS_EVAL["epochs"],
                "auxiliary_weight": DARTS_EVAL["auxiliary_weight"] if card.topology != "dense2d" else 0.0,
                "uncertain": [], "note": ""}
    t = task_settings(card.name)
    return {**EVAL_COMMON, "C": t.eval_C, "batch_size": t.eval_batch_size, "lr_horizon": t.lr_horizon,
            "drop_path_horizon": t.drop_path_horizon, "auxiliary_weight": t.auxiliary_weight, "source": t.eval_source,
            "uncertain": [t.note] if t.note else [], "note": t.note}


def darts_protocol(card: TaskCard, protocol: str | None = "nb360",
                   epochs: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainConfig fields without the seed, a description) of a DARTS evaluation protocol for the task.

    Cosine annealing stepped per epoch and the drop-path ramp use the protocol's horizons (NAS-Bench-360:
    T_max 600 on 2D point tasks, 150 otherwise; drop-path over 600 epochs in 2D, 150 in 1D); with
    `epochs` changed, both horizons scale with it.
    """
    protocol = resolve_protocol(card, protocol)
    s = _darts_settings(card, protocol)
    run_epochs = s["epochs"] if epochs is None else epochs
    scale = run_epochs / s["epochs"]
    extras = {"lr_step_every": "epoch", "lr_horizon_epochs": max(1, round(s["lr_horizon"] * scale)),
              "drop_path": {"prob": s["drop_path"], "horizon_epochs": max(1, round(s["drop_path_horizon"] * scale))}}
    if s["auxiliary_weight"]:
        extras["auxiliary_weight"] = s["auxiliary_weight"]
    fields = {"epochs": run_epochs, "batch_size": s["batch_size"], "lr": s["lr"], "momentum": s["momentum"],
              "nesterov": s["nesterov"], "weight_decay": s["weight_decay"], "schedule": "cosine",
              "eta_min": s["eta_min"], "milestones": [], "grad_clip": s["grad_clip"],
              "eval_batch_size": card.protocol().eval_batch_size, "extras": extras}
    description = {
        "name": protocol, "card_epochs": s["epochs"], "epochs": run_epochs, "shortened": run_epochs < s["epochs"],
        "changed": run_epochs != s["epochs"],
        "milestone_rule": "none: cosine annealing stepped per epoch" + (
            "; horizons scaled with --epochs" if run_epochs != s["epochs"] else ""),
        "step_every": "epoch", "optimizer": f"SGD momentum {s['momentum']}, weight decay {s['weight_decay']}, "
                                            f"grad clip {s['grad_clip']}",
        "source": s["source"], "schedule_source": s["source"], "uncertain": list(s["uncertain"]),
        "split": "retrain: train on train+val, evaluate on test (the card's [splits.retrain])",
        "epoch": "one pass over the retrain training split",
    }
    return fields, description


def train_config(fields: dict[str, Any], seed: int) -> Any:
    """The TrainConfig of `retrain_protocol` fields for one seed."""
    from ..training import TrainConfig

    values = dict(fields)
    values["milestones"] = tuple(values["milestones"])
    return TrainConfig(**values, seed=seed)


def _params(card: TaskCard, model: dict[str, Any]) -> int | None:
    """Parameter count of a model; DARTS networks without the auxiliary head (DARTS's convention)."""
    from ..models import count_parameters, count_parameters_darts

    if model["kind"] == "xgboost":
        return None  # trees: no parameter count comparable with a network's
    net = build_model(card, model)
    return count_parameters_darts(net) if model["kind"] == "darts" else count_parameters(net)


