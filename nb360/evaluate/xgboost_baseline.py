"""XGBoost: NAS-Bench-360's non-neural baseline ("XGBoost / default"), with the `xgboost` package.

As rtu715/NAS-Bench-360 xgboost/xgboost_360.py@0d1af0c (run by xgboost/run.sh@6480e89 with seeds 0, 1, 2):
the features are each input flattened (xgboost/utils.py `dm_to_numpy`: `x.reshape(n, -1)`), the
model is fitted on the search split's train part with early stopping after 5 rounds without
improvement on the val part (the last of `eval_set=[train, val]`), and scored on test. Settings:
max_depth 3, eta 1, subsample 0.9, sampling_method "gradient_based", histogram trees on the GPU
(`gpu_hist`; nb360: tree_method "hist" on --device), random_state = the seed, xgboost's default
100 rounds; per task the objective and eval metric below (`TASKS`).

Differences from the script, all without effect on the numbers unless named:
- nb360's loaders give the inputs the WRN pipelines see. Darcy Flow's carry two constant grid
  channels beside the normalised coefficient (NAS-Bench-360's Perceiver loader gives the
  coefficient alone): constant columns never split a tree, so the trees are the same. Targets are
  the raw solution, as there (its loader encodes and decodes them).
- The test score is the task card's metric computed by nb360's objective (ECG: macro F1 after the
  per-recording vote; FSD50K: clip-level from the chunk scores), on the model's outputs. The script
  scored `model.predict` (hard labels): `scores="hard"` (default) does the same for the
  multi-label tasks, where it matters (AUROC/mAP of 0/1 predictions); `scores="proba"` uses the
  predicted probabilities instead. On single-label tasks argmax(probability) = the predicted label.
- PSICOV is refused: NAS-Bench-360 has no XGBoost result for it ("did not fit on a single V100 GPU").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .spec import CONFIG_FORMAT

SOURCE = "rtu715/NAS-Bench-360 xgboost/xgboost_360.py@0d1af0c (run by xgboost/run.sh@6480e89, seeds 0, 1, 2)"
XGB_OPTIONS = ("rounds", "scores", "threads")
DEFAULT_ROUNDS = 100  # xgboost's n_estimators default, which the script relied on
COMMON = {"max_depth": 3, "learning_rate": 1.0, "early_stopping_rounds": 5, "subsample": 0.9,
          "sampling_method": "gradient_based", "tree_method": "hist"}

# task -> (estimator, problem, task-specific parameters) as the script sets them
TASKS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "cifar100": ("XGBClassifier", "multiclass", {"objective": "multi:softmax", "eval_metric": "merror", "num_class": 100}),
    "spherical": ("XGBClassifier", "multiclass", {"objective": "multi:softmax", "eval_metric": "merror",
                                                  "num_class": 100}),
    "ninapro": ("XGBClassifier", "multiclass", {"objective": "multi:softmax", "eval_metric": "merror", "num_class": 18}),
    "satellite": ("XGBClassifier", "multiclass", {"objective": "multi:softmax", "eval_metric": "merror",
                                                  "num_class": 24}),
    # the script passes binary:logistic; xgboost's classifier switches 4 classes to multi:softprob (eval mlogloss)
    "ecg": ("XGBClassifier", "multiclass", {"objective": "binary:logistic"}),
    "deepsea": ("XGBClassifier", "multilabel", {}),
    "fsd50k": ("XGBClassifier", "multilabel", {}),
    "cosmic": ("XGBClassifier", "mask", {}),
    "darcyflow": ("XGBRegressor", "regression", {}),
}


def model_description(card: Any, spec: Any) -> dict[str, Any]:
    """The XGBoost model as JSON-ready data (estimator, parameters, scoring), for config.json."""
    unknown = sorted(set(spec.baseline_options) - set(XGB_OPTIONS))
    if unknown:
        raise InputError(f"unknown xgboost option(s) {', '.join(unknown)}; known: {', '.join(XGB_OPTIONS)}")
    if card.name not in TASKS:
        why = (" (NAS-Bench-360's XGBoost row has none: 'did not fit on a single V100 GPU')"
               if card.name == "psicov" else "")
        raise InputError(f"no XGBoost baseline for {card.name}{why}; it runs on {', '.join(TASKS)}")
    if spec.epochs is not None:
        raise InputError("--epochs does not apply to XGBoost: shorten it with its rounds (--xgb-rounds)")
    estimator, problem, params = TASKS[card.name]
    options = spec.baseline_options
    rounds = int(options.get("rounds") or DEFAULT_ROUNDS)
    scores = options.get("scores", "hard")
    if rounds < 1 or scores not in ("hard", "proba"):
        raise InputError(f"xgboost needs rounds >= 1 and scores hard or proba, got {rounds} and {scores!r}")
    return {"kind": "xgboost", "backbone": "xgboost", "estimator": estimator, "problem": problem,
            "settings": {**COMMON, **params, "n_estimators": rounds}, "scores": scores,
            "threads": int(options.get("threads") or 1), "source": SOURCE}


def protocol(model: dict[str, Any], device_type: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the estimator's parameters, a protocol description in evaluate's format)."""
    import xgboost

    rounds = model["settings"]["n_estimators"]
    params = {**model["settings"], "device": "cuda" if device_type == "cuda" else "cpu", "n_jobs": model["threads"]}
    description = {
        "name": "xgboost", "card_epochs": DEFAULT_ROUNDS, "epochs": rounds, "shortened": rounds < DEFAULT_ROUNDS,
        "changed": rounds != DEFAULT_ROUNDS, "milestone_rule": "none: boosting rounds, early stopping after 5 "
        "without improvement on val", "step_every": "round", "optimizer": f"xgboost {xgboost.__version__} "
        f"{model['estimator']}", "source": SOURCE, "schedule_source": SOURCE, "uncertain": [],
        "split": "search: fit on train, early stopping on val, score on test (NAS-Bench-360's train=True loaders)",
        "epoch": "one boosting round",
    }
    return params, description


def _items(dataset: Any, input_dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, d), targets (n, k)) of a dataset; clip items (FSD50K val: all chunks of a clip) become one row
    per chunk with the clip's labels."""
    xs, ys = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        x, y = np.asarray(item[0], dtype=np.float32), np.asarray(item[1])
        if x.ndim == input_dims + 1:
            xs += [c.reshape(-1) for c in x]
            ys += [y] * len(x)
        else:
            xs.append(x.reshape(-1))
            ys.append(y)
    return np.stack(xs), np.stack(ys)


def _targets(y: np.ndarray, problem: str, dataset: Any) -> np.ndarray:
    if problem == "multiclass":
        return y.reshape(len(y)).astype(np.int64)
    if problem == "regression":
        out = y.reshape(len(y), -1).astype(np.float64)
        if getattr(dataset, "targets_normalized", False):  # the script fits the raw solution
            import torch

            out = dataset.y_normalizer.decode(torch.from_numpy(out.reshape(y.shape))).reshape(len(y), -1).numpy()
        return out
    return (y.reshape(len(y), -1) > 0.5).astype(np.int64)


class TreeModel:
    """The fitted trees as a callable network for nb360's objectives: outputs in the form each objective reads."""

    def __init__(self, estimator: Any, problem: str, scores: str, normalizer: Any = None, num_outputs: int = 0) -> None:
        self.estimator, self.problem, self.scores, self.normalizer = estimator, problem, scores, normalizer
        self.num_outputs = num_outputs
        self.training = False

    def eval(self) -> TreeModel:
        """No-op (objectives may call it)."""
        return self

    def __call__(self, x: Any) -> Any:
        import torch

        shape = tuple(x.shape)
        feats = x.reshape(shape[0], -1).detach().cpu().numpy().astype(np.float32)
        if self.problem == "regression":
            pred = torch.from_numpy(self.estimator.predict(feats).astype(np.float32))
            return self.normalizer.encode(pred.reshape(shape[0], *shape[2:]))  # the objective decodes outputs
        proba = np.asarray(self.estimator.predict_proba(feats), dtype=np.float64)
        classes = getattr(self.estimator, "nb360_classes", None)
        if self.problem == "multiclass" and classes is not None:  # classes absent from train: probability 0
            full = np.zeros((len(proba), self.num_outputs))
            full[:, classes] = proba
            proba = full
        if self.problem == "multiclass":  # log-probabilities: argmax = the script's predicted label
            return torch.from_numpy(np.log(np.clip(proba, 1e-12, 1.0))).float()
        if self.scores == "hard":
            proba = (proba > 0.5).astype(np.float64)  # XGBClassifier.predict's multi-label threshold
        if self.problem == "mask":  # Cosmic's objective thresholds raw outputs at 0.5: give it the probabilities
            return torch.from_numpy(proba).float().reshape(shape[0], *shape[2:])
        return torch.from_numpy(np.log(np.clip(proba, 1e-7, 1)) - np.log(np.clip(1 - proba, 1e-7, 1))).float()


def fit_seed(model: dict[str, Any], params: dict[str, Any], card: Any, datasets: dict[str, Any],
             seed: int) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Fit one seed's trees; return (the estimator, per-round log records, a fit summary)."""
    import xgboost

    train, val = datasets["train"], datasets.get("val")
    if val is None:
        raise InputError(f"{card.name}: the search split has no val set for XGBoost's early stopping")
    dims = len(card.input_shape)
    x_tr, y_tr = _items(train, dims)
    x_va, y_va = _items(val, dims)
    y_tr, y_va = _targets(y_tr, model["problem"], train), _targets(y_va, model["problem"], val)
    classes = None
    if model["problem"] == "multiclass":
        # xgboost's classifier wants labels 0..k-1 all present in train: a small set (a fixture, a subset) may miss
        # some; they are relabelled (the identity on the released data, where every class occurs) and val rows of
        # classes never trained on leave the early-stopping set
        classes = np.unique(y_tr)
        if len(classes) < card.num_outputs:
            index = {int(c): i for i, c in enumerate(classes)}
            keep = np.isin(y_va, classes)
            x_va, y_va = x_va[keep], np.array([index[int(c)] for c in y_va[keep]], dtype=np.int64)
            y_tr = np.array([index[int(c)] for c in y_tr], dtype=np.int64)
            if "num_class" in params:
                params = {**params, "num_class": len(classes)}
        else:
            classes = None
    estimator = getattr(xgboost, model["estimator"])(**params, random_state=seed)
    estimator.fit(x_tr, y_tr, eval_set=[(x_tr, y_tr), (x_va, y_va)], verbose=False)
    estimator.nb360_classes = classes  # TreeModel maps the columns back to the card's classes
    history = estimator.evals_result()
    metric = next(iter(history["validation_1"]))
    rounds = len(history["validation_1"][metric])
    log = [{"epoch": r, "lr": params["learning_rate"], "train": {"loss": history["validation_0"][metric][r]},
            "val": {metric: history["validation_1"][metric][r]}} for r in range(rounds)]
    missing = [] if classes is None else sorted(set(range(card.num_outputs)) - {int(c) for c in classes})
    return estimator, log, {"eval_metric": metric, "rounds": rounds, "best_round": int(estimator.best_iteration),
                            "classes_missing_in_train": missing,
                            "features": int(x_tr.shape[1]), "train_rows": int(x_tr.shape[0]),
                            "val_rows": int(x_va.shape[0])}


def evaluate_xgboost(spec: Any, card: Any, model: dict[str, Any], run: Any, device: Any,
                     command: list[str]) -> Any:
    """Fit and score XGBoost once per seed into the run directory (evaluate's layout); return an Evaluation."""
    try:
        import xgboost  # noqa: F401
    except ImportError:
        raise InputError("--backbone xgboost needs the xgboost package: pip install xgboost (xgboost-cpu on a CPU-only "
                         "machine), or nb360[baselines]") from None
    from ..data import load
    from ..data.fingerprint import fingerprint
    from ..tasks import task_data_dir
    from ..training import make_loader, objective_for
    from .files import _end_session, _prepare, _start_session, read_json, write_json
    from .results import data_source, summarize
    from .workflow import Evaluation

    datasets = load(spec.task, spec.data_root, "search", **spec.loader_options)
    params, description = protocol(model, device.type)
    files = fingerprint(spec.task, spec.data_root)
    config = {"format": CONFIG_FORMAT, "task": spec.task, "model": model, "train": params, "protocol": description,
              "seeds": list(spec.seeds), "eval_every": 1, "device_type": device.type, "processes": 1,
              "loader_options": spec.loader_options, "params": None,
              "data_sha256": {name: f["sha256"] for name, f in files.items()}}
    resumed = _prepare(run, config)
    manifest = _start_session(run, spec, config, device, 1, command, files, str(task_data_dir(spec.data_root,
                                                                                              spec.task)))
    status = "interrupted"
    try:
        objective = objective_for(card, datasets["train"])
        per_seed = []
        for seed in spec.seeds:
            if run.seed_result(seed).exists():
                per_seed.append(read_json(run.seed_result(seed), "seed result"))
                continue
            estimator, log, summary = fit_seed(model, params, card, datasets, seed)
            net = TreeModel(estimator, model["problem"], model["scores"],
                            getattr(datasets["train"], "y_normalizer", None), card.num_outputs)
            loader = make_loader(datasets["test"], 256, shuffle=False)
            test = objective.evaluate(net, loader, device)
            run.seed_dir(seed).mkdir(parents=True, exist_ok=True)
            estimator.save_model(str(run.seed_dir(seed) / "model.json"))
            log[-1]["test"] = test
            run.log(seed).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in log), encoding="utf-8")
            result = {"seed": seed, "epochs": summary["rounds"], "train": {"loss": log[-1]["train"]["loss"]},
                      "test": test, "fit": summary}
            write_json(run.seed_result(seed), result)
            per_seed.append(read_json(run.seed_result(seed), "seed result"))
        results = summarize(config, per_seed, card, data_source(datasets))
        write_json(run.results, results)
        status = "finished"
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        _end_session(run, manifest, status)
    return Evaluation(run_dir=Path(run.path), results=results, resumed=resumed)
