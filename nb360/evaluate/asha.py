"""WRN + ASHA: NAS-Bench-360's tuned-backbone baseline ("WRN / ASHA (tuned)"), on Ray Tune's ASHA scheduler.

NAS-Bench-360 tuned its baseline backbone (WRN-16-4 on 2D tasks, the 1D ResNet on 1D tasks) with
Determined's `adaptive_asha` searcher over SGD's learning rate, momentum, weight decay and the
WRN's dropout, on the search split (train, selecting by the val metric), then retrained the
backbone with the chosen values and the card's protocol on train+val and scored it on test
(`*_tuning.yaml` then `*_retrain.yaml`; e.g. backbone_1d/scripts/satellite_retrain.yaml@440f85f
keeps batch 4096 and 200 epochs and sets only the tuned lr, momentum and weight decay).

nb360 runs the same per seed: trial hyper-parameters drawn from the same space by Ray Tune's
random search (seeded by the run's seed), trials trained by nb360's loop on the search split and
stopped early by `ray.tune.schedulers.ASHAScheduler`, the best trial by the card's val metric (over
every validation it reported, as Determined keeps the best validation), then the retrain.

Deviations, each recorded in the run's config.json (`model.tuning.deviations`):
- Determined's rungs at max_length / divisor^k (0.78, 3.1, 12.5, 50, 200 epochs for 200) become
  whole epochs in Ray (grace period max(1, round(max_length / divisor^(max_rungs - 1))): 1, 4, 16,
  64, 200), because nb360's trials report once per evaluated epoch.
- Determined's mode "aggressive" is one ASHA bracket (ASHAScheduler brackets=1); "standard" is
  taken as 2 brackets [uncertain: Determined documents it only as between aggressive's 1 and
  conservative's max_rungs].
- Trials validate at every rung epoch, every NAS-Bench-360 validation period and the last epoch.
- The repository holds several versions of each tuning file (16, 28, 104 or 128 trials; two
  search spaces); `SETTINGS` names the file and commit each task's values come from [uncertain:
  which version produced the published row is not recorded].
- Which seed tuned and which retrained is not recorded either; nb360 tunes once per seed and
  retrains that seed with that seed's best trial.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, InputError

# Determined adaptive_asha settings every NAS-Bench-360 tuning file shares.
MAX_RUNGS = 5
DIVISOR = 4
MAX_CONCURRENT = 4

_WIDE = {"dropout": (0.0, 0.3, 0.6), "lr_log10": (-4.0, -1.0), "momentum": (0.0, 0.3, 0.6, 0.9),
         "wd_log10": (-5.0, -2.0)}
_NARROW = {"dropout": (0.0, 0.3), "lr_log10": (-4.0, 0.0), "momentum": (0.0, 0.9), "wd_log10": (-5.0, -1.0)}


@dataclass(frozen=True)
class AshaSettings:
    """One task's NAS-Bench-360 tuning file: its search space and searcher."""

    source: str  # file @ commit in rtu715/NAS-Bench-360
    max_trials: int
    mode: str  # Determined's adaptive mode: "aggressive" or "standard"
    batch_size: int  # global_batch_size of the tuning trials
    metric: str  # the searcher metric NAS-Bench-360 named (nb360 uses the card's metric on val: the same quantity)
    validation_period: int  # min_validation_period, epochs
    dropout: tuple[float, ...]
    lr_log10: tuple[float, float]
    momentum: tuple[float, ...]
    wd_log10: tuple[float, float]
    eval_batch_size: int | None = None


def _s(source: str, trials: int, mode: str, batch: int, metric: str, period: int, space: dict[str, Any],
       eval_batch: int | None = None) -> AshaSettings:
    return AshaSettings(f"rtu715/NAS-Bench-360 {source}", trials, mode, batch, metric, period, eval_batch_size=eval_batch,
                        **space)


SETTINGS: dict[str, AshaSettings] = {
    "cifar100": _s("backbone/scripts/cifar100_tuning.yaml@87627fe", 128, "standard", 128, "top1_accuracy", 5, _WIDE),
    "spherical": _s("backbone/scripts/scifar100_tuning.yaml@cbba450", 16, "standard", 128, "top1_accuracy", 5, _WIDE),
    "ninapro": _s("backbone/scripts/ninapro_tuning.yaml@cbba450", 28, "aggressive", 128, "top1_accuracy", 5, _WIDE),
    "fsd50k": _s("backbone/scripts/audio_tuning.yaml@cbba450", 28, "aggressive", 256, "val_mAP", 5, _WIDE),
    "darcyflow": _s("backbone/scripts/pde_tuning.yaml@cbba450", 104, "aggressive", 8, "validation_loss", 5, _WIDE, 4),
    "psicov": _s("backbone/scripts/protein_tuning.yaml@4a838c9", 16, "aggressive", 8, "MAE", 1, _NARROW, 2),
    "cosmic": _s("backbone/scripts/cosmic_tuning.yaml@440f85f", 16, "aggressive", 8, "TPR", 20, _WIDE, 2),
    "ecg": _s("backbone_1d/scripts/ECG_tuning.yaml@440f85f", 56, "aggressive", 256, "score", 20, _WIDE),
    "satellite": _s("backbone_1d/scripts/satellite_tuning.yaml@440f85f", 28, "aggressive", 256, "top1_accuracy", 10,
                    _WIDE),
    "deepsea": _s("backbone_1d/scripts/deepsea_tuning.yaml@440f85f", 256, "aggressive", 256, "test_mAUC", 10, _WIDE),
}

# baseline_options keys of --backbone wrn-asha (defaults: the task's SETTINGS)
ASHA_OPTIONS = ("trials", "concurrency", "threads", "brackets")
DEVIATIONS = (
    "rungs in whole epochs (Ray Tune's ASHAScheduler grace period and reduction factor) instead of Determined's "
    "fractional max_length / divisor^k",
    "mode aggressive = 1 ASHA bracket; standard = 2 brackets [uncertain]",
    "trials validate at rung epochs, every NAS-Bench-360 validation period and the last epoch",
    "tuned once per seed; each seed retrains with its own best trial [uncertain: NAS-Bench-360 does not record it]",
    "the 1D ResNet has no dropout: its sampled dropout is unused, as in NAS-Bench-360's backbone_1d/model_def.py",
)


def task_settings(task: str) -> AshaSettings:
    """NAS-Bench-360's tuning settings of a task."""
    try:
        return SETTINGS[task]
    except KeyError:
        raise InputError(f"no ASHA tuning settings for task {task!r}; known: {', '.join(SETTINGS)}") from None


def rungs(max_epochs: int, brackets: int = 1) -> list[list[int]]:
    """The epochs at which ASHA compares trials, per bracket, ending with max_epochs (where every trial ends).

    Ray Tune's ASHAScheduler puts bracket s's rungs at grace · rf^(k+s) for k < log_rf(max_t / grace) - s + 1
    (tests/test_baselines.py checks this list against the scheduler's own)."""
    import numpy as np

    grace = max(1, round(max_epochs / DIVISOR ** (MAX_RUNGS - 1)))
    out = []
    for s in range(brackets):
        count = int(np.log(max_epochs / grace) / np.log(DIVISOR) - s + 1)
        levels = sorted(grace * DIVISOR ** (k + s) for k in range(max(count, 0)))
        out.append([m for m in levels if m < max_epochs] + [max_epochs])
    return out


def tuning_description(task: str, max_epochs: int, options: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready description of the tuning (goes into the run's model description and config.json)."""
    unknown = sorted(set(options) - set(ASHA_OPTIONS))
    if unknown:
        raise InputError(f"unknown wrn-asha option(s) {', '.join(unknown)}; known: {', '.join(ASHA_OPTIONS)}")
    s = task_settings(task)
    trials = int(options.get("trials") or s.max_trials)
    brackets = int(options.get("brackets") or (1 if s.mode == "aggressive" else 2))
    concurrency = int(options.get("concurrency") or MAX_CONCURRENT)
    if trials < 1 or brackets < 1 or concurrency < 1:
        raise InputError(f"wrn-asha needs trials, brackets and concurrency >= 1, got {trials}, {brackets}, "
                         f"{concurrency}")
    return {"scheduler": "ray.tune.schedulers.ASHAScheduler", "search": "random (ray.tune BasicVariantGenerator)",
            "trials": trials, "card_trials": s.max_trials, "brackets": brackets, "reduction_factor": DIVISOR,
            "max_epochs": max_epochs, "rungs": rungs(max_epochs, brackets), "concurrency": concurrency,
            "batch_size": s.batch_size, "eval_batch_size": s.eval_batch_size,
            "space": {"lr": {"log_uniform": [10 ** s.lr_log10[0], 10 ** s.lr_log10[1]]},
                      "momentum": {"choice": list(s.momentum)},
                      "weight_decay": {"log_uniform": [10 ** s.wd_log10[0], 10 ** s.wd_log10[1]]},
                      "dropout": {"choice": list(s.dropout)}},
            "selection": "the trial with the best val metric (card metric, reported form) over every validation",
            "validation_period": s.validation_period, "nb360_metric": s.metric, "source": s.source,
            "settings": asdict(s), "deviations": list(DEVIATIONS),
            "threads": int(options.get("threads") or 1)}


def _param_space(tuning: dict[str, Any]) -> dict[str, Any]:
    from ray import tune

    space = tuning["space"]
    return {"lr": tune.loguniform(*space["lr"]["log_uniform"]), "momentum": tune.choice(space["momentum"]["choice"]),
            "weight_decay": tune.loguniform(*space["weight_decay"]["log_uniform"]),
            "dropout": tune.choice(space["dropout"]["choice"])}


def _validation_epochs(tuning: dict[str, Any]) -> set[int]:
    """1-based epochs after which a trial validates and reports."""
    last = tuning["max_epochs"]
    epochs = {e for bracket in tuning["rungs"] for e in bracket}
    epochs |= set(range(tuning["validation_period"], last + 1, tuning["validation_period"]))
    return {e for e in epochs if 1 <= e <= last}


def trial_fields(base_fields: dict[str, Any], hparams: dict[str, Any], batch_size: int | None = None,
                 eval_batch_size: int | None = None) -> dict[str, Any]:
    """The card protocol's TrainConfig fields with a trial's lr, momentum and weight decay (and batch sizes)."""
    fields = dict(base_fields)
    fields.update(lr=float(hparams["lr"]), momentum=float(hparams["momentum"]),
                  weight_decay=float(hparams["weight_decay"]))
    # every tuning file sets nesterov: true; NAS-Bench-360 applies it only with momentum (`nesterov if momentum`)
    fields["nesterov"] = fields["momentum"] > 0
    if batch_size is not None:
        fields["batch_size"] = batch_size
    if eval_batch_size is not None:
        fields["eval_batch_size"] = eval_batch_size
    return fields


def tuned_model(base: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """The backbone description with a trial's dropout (WRNs only: the 1D ResNet has none)."""
    model = {"kind": "backbone", "backbone": base["backbone"], "options": dict(base.get("options", {}))}
    if base["backbone"] in ("wrn", "dense-wrn"):
        model["options"]["drop_rate"] = float(hparams["dropout"])
    return model


def _trial(hparams: dict[str, Any], ctx: dict[str, Any]) -> None:
    """One Ray Tune trial: train the backbone on the search split, report the val metric at validation epochs."""
    import torch
    from ray import tune

    from ..data import load
    from ..tasks import get_task
    from ..training import fit, objective_for, seed_everything
    from .protocols import build_model, train_config

    torch.set_num_threads(ctx["threads"])
    card = get_task(ctx["task"])
    data = load(ctx["task"], ctx["data_root"], "search", **ctx["loader_options"])
    if data.get("val") is None:
        raise DataError(f"{ctx['task']}: the search split has no val set to tune on")
    tuning = ctx["tuning"]
    cfg = train_config(trial_fields(ctx["base_fields"], hparams, tuning["batch_size"], tuning["eval_batch_size"]),
                       ctx["seed"])
    seed_everything(ctx["seed"])
    model = build_model(card, tuned_model(ctx["base_model"], hparams))
    objective = objective_for(card, data["train"])
    report_at = _validation_epochs(tuning)

    def on_epoch(epoch: int, record: dict[str, Any]) -> None:
        if "val" in record:
            value = record["val"]["reported"]
            tune.report({"epoch": epoch + 1, "val_reported": float(value) if math.isfinite(value) else 1e30,
                         "train_loss": float(record["train"]["loss"])})

    device = torch.device(ctx["device"])
    try:
        fit(model, data["train"], {"val": data["val"]}, objective, cfg, device, on_epoch=on_epoch,
            eval_epochs=lambda e: (e + 1) in report_at)
    except FloatingPointError:  # a diverged trial: as Determined, it counts as errored and the search goes on
        tune.report({"epoch": cfg.epochs, "val_reported": 1e30, "train_loss": float("nan")})


def _trial_records(results: Any) -> list[dict[str, Any]]:
    records = []
    for result in results:
        df = result.metrics_dataframe
        vals = [] if df is None or "val_reported" not in df else [float(v) for v in df["val_reported"]]
        epochs = [] if df is None or "epoch" not in df else [int(e) for e in df["epoch"]]
        records.append({"trial": os.path.basename(str(result.path)), "hparams": dict(result.config),
                        "epochs": max(epochs) if epochs else 0, "validations": dict(zip(map(str, epochs), vals)),
                        "best_val": min(vals) if vals else None,
                        "error": None if result.error is None else f"{type(result.error).__name__}: {result.error}"})
    return sorted(records, key=lambda r: (r["best_val"] is None, r["best_val"] if r["best_val"] is not None else 0))


def tune_seed(ctx: dict[str, Any], out_dir: Path, progress: bool = False) -> dict[str, Any]:
    """Run (or resume, or read) one seed's ASHA tuning in `out_dir`; return best.json's content."""
    best_file = out_dir / "best.json"
    if best_file.exists():
        return json.loads(best_file.read_text(encoding="utf-8"))
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from .files import write_json

    tuning = ctx["tuning"]
    if not progress:  # Ray Tune's newer console output prints an experiment box even at verbose=0
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    storage = (out_dir / "ray").resolve()
    name = "asha"
    resources = {"cpu": tuning["threads"], "gpu": 1 if str(ctx["device"]).startswith("cuda") else 0}
    trainable = tune.with_resources(tune.with_parameters(_trial, ctx=ctx), resources)
    if tune.Tuner.can_restore(str(storage / name)):
        tuner = tune.Tuner.restore(str(storage / name), trainable, resume_unfinished=True, restart_errored=True)
    else:
        scheduler = ASHAScheduler(time_attr="epoch", max_t=tuning["max_epochs"], grace_period=tuning["rungs"][0][0],
                                  reduction_factor=tuning["reduction_factor"], brackets=tuning["brackets"])
        tuner = tune.Tuner(
            trainable, param_space=_param_space(tuning),
            tune_config=tune.TuneConfig(metric="val_reported", mode="min", scheduler=scheduler,
                                        num_samples=tuning["trials"], reuse_actors=True,
                                        search_alg=BasicVariantGenerator(random_state=ctx["seed"],
                                                                         max_concurrent=tuning["concurrency"])),
            run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=1 if progress else 0))
    results = tuner.fit()
    trials = _trial_records(results)
    ok = [t for t in trials if t["best_val"] is not None and t["best_val"] < 1e30]
    if not ok:
        errors = "; ".join(sorted({t["error"] for t in trials if t["error"]})[:3]) or "no trial reported a val metric"
        raise InputError(f"every ASHA trial failed or diverged ({errors}); the trials are in {storage}")
    best = {"seed": ctx["seed"], "hparams": ok[0]["hparams"], "best_val": ok[0]["best_val"], "trial": ok[0]["trial"],
            "trials": len(trials), "completed": sum(t["epochs"] >= tuning["max_epochs"] for t in trials),
            "errored": sum(t["error"] is not None for t in trials)}
    write_json(out_dir / "trials.json", {"tuning": tuning, "trials": trials})
    write_json(best_file, best)
    return best


class RayContext:
    """ray.init for the tuning when no Ray is running (RAY_ADDRESS, if set, names a cluster to join)."""

    def __init__(self, cpus: int | None = None) -> None:
        self.cpus = cpus
        self.started = False

    def __enter__(self) -> RayContext:
        try:
            import ray
            from ray import tune  # noqa: F401  (ray[tune]'s extras are needed)
        except ImportError:
            raise InputError("--backbone wrn-asha needs Ray Tune: pip install 'ray[tune]' (or nb360[baselines])") from None
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
            self.started = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            import ray

            ray.shutdown()


def prepare_seed(spec: Any, card: Any, run: Any, config: dict[str, Any], seed: int, device: Any,
                 progress: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model description, TrainConfig fields, result extras) of one seed: its tuning's best trial applied."""
    model = config["model"]
    ctx = {"task": card.name, "data_root": str(Path(spec.data_root).expanduser().resolve()),
           "loader_options": dict(spec.loader_options), "seed": seed, "tuning": model["tuning"],
           "base_fields": config["train"], "base_model": model["base"], "device": str(device),
           "threads": model["tuning"]["threads"]}
    best = tune_seed(ctx, run.seed_dir(seed) / "tuning", progress=progress)
    fields = trial_fields(config["train"], best["hparams"])
    return tuned_model(model["base"], best["hparams"]), fields, {"tuned": best}
