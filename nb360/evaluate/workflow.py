"""The evaluation workflow: train and score a model once per seed, resumably, on one or more processes."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, InputError, Nb360Error
from ..tasks import TaskCard, get_task
from .files import (
    RunDir,
    _digest,
    _end_session,
    _json_ready,
    _now,
    _prepare,
    _start_session,
    _strip_times,
    _truncate_log,
    default_run_dir,
    load_checkpoint,
    read_json,
    save_checkpoint,
    write_json,
)
from .protocols import (
    _params,
    build_model,
    darts_protocol,
    model_description,
    resolve_protocol,
    retrain_protocol,
    train_config,
)
from .results import data_source, summarize
from .spec import CONFIG_FORMAT, EpochHook, EvalSpec


# ----------------------------------------------------------------------------- the workflow
@dataclass
class Evaluation:
    """What `evaluate` returns: the run directory and the results it wrote."""

    run_dir: Path
    results: dict[str, Any]
    resumed: bool


def evaluate(spec: EvalSpec, run_dir: str | os.PathLike[str] | None = None, *, progress: bool = True,
             command: list[str] | None = None, epoch_hook: EpochHook | None = None) -> Evaluation:
    """Train and score `spec` once per seed; write (or resume) the run directory and return its results.

    `epoch_hook(seed, epoch)` runs after each epoch's checkpoint is on disk (tests stop runs there).
    Under torchrun every rank must call this; only rank 0 writes files, and only rank 0's returned
    results are complete (the other ranks do not evaluate).
    """
    from ..training import distributed

    spec.validate()
    card = get_task(spec.task)
    # DARTS genotypes: the E2RNAS suite retrains with the authors' (DARTS's) protocol, the ten with NAS-Bench-360's
    spec = dataclasses.replace(spec, protocol=resolve_protocol(card, spec.protocol))
    joined_here = not distributed.is_active()  # leave a caller's own process group alone
    launch, device = distributed.init(spec.device)
    main = launch.rank == 0
    finished = False
    try:
        path = distributed.broadcast(str(run_dir if run_dir is not None else default_run_dir(spec)) if main else None)
        evaluation = _evaluate(spec, card, RunDir(Path(path)), device, launch.world_size, main, progress,
                               command if command is not None else list(sys.argv), epoch_hook)
        finished = True
        return evaluation
    finally:
        if joined_here:
            distributed.shutdown(synchronize=finished)


def _collective(main: bool, action: Callable[[], Any]) -> Any:
    """Run `action` on rank 0 and hand its result (or its nb360 error) to every rank."""
    from ..training import distributed

    outcome: Any = None
    if main:
        try:
            outcome = ("ok", action())
        except Nb360Error as exc:
            outcome = ("error", exc)
    outcome = distributed.broadcast(outcome)
    if outcome[0] == "error":
        raise outcome[1]
    return outcome[1]


def _evaluate(spec: EvalSpec, card: TaskCard, run: RunDir, device: Any, processes: int, main: bool, progress: bool,
              command: list[str], epoch_hook: EpochHook | None) -> Evaluation:
    from ..data import load
    from ..data.fingerprint import fingerprint
    from .attacks import run_seed_attacks, summarize_robustness
    from ..tasks import task_data_dir
    from ..training import distributed

    model = model_description(card, spec)
    if model["kind"] == "xgboost" or model.get("backbone") == "wrn-asha":
        if processes > 1:
            raise InputError(f"--backbone {spec.backbone} runs in one process (its own parallelism: trials or "
                             "threads); drop torchrun")
    if model["kind"] == "xgboost":
        from .xgboost_baseline import evaluate_xgboost

        return evaluate_xgboost(spec, card, model, run, device, command)
    if model["kind"] == "darts":
        train_fields, protocol = darts_protocol(card, spec.protocol, spec.epochs)
    else:
        train_fields, protocol = retrain_protocol(card, spec.epochs)
    datasets = load(spec.task, spec.data_root, "retrain", **spec.loader_options)
    if datasets.get("test") is None:
        raise DataError(f"{spec.task}: the retrain split has no test set to evaluate on")
    plan = _attack_plan(spec, card, datasets)  # before training: a task that cannot be attacked fails now

    def setup() -> tuple[dict[str, Any], dict[str, Any], bool]:
        files = fingerprint(spec.task, spec.data_root)
        config = {"format": CONFIG_FORMAT, "task": spec.task, "model": model, "train": train_fields,
                  "protocol": protocol, "seeds": list(spec.seeds), "eval_every": spec.eval_every,
                  "device_type": device.type, "processes": processes, "loader_options": spec.loader_options,
                  "params": _params(card, model),
                  "data_sha256": {name: f["sha256"] for name, f in files.items()}}
        resumed = _prepare(run, config)
        manifest = _start_session(run, spec, config, device, processes, command, files,
                                  str(task_data_dir(spec.data_root, spec.task)))
        return config, manifest, resumed

    config, manifest, resumed = _collective(main, setup)
    status = "interrupted"
    try:
        per_seed, robust = [], []
        with _tuning_cluster(model):
            for seed in spec.seeds:
                per_seed.append(_run_seed(spec, card, run, config, model, datasets, seed, device, main, progress,
                                          manifest, epoch_hook))
                if plan is not None and main:
                    robust.append(run_seed_attacks(card, run, config, model, datasets, seed, device, *plan,
                                                   spec.attack_limit, progress))
                distributed.barrier()
        results = summarize(config, per_seed, card, data_source(datasets))
        if plan is not None:
            results["robustness"] = summarize_robustness(card, robust, plan[2], plan[1], spec.attack_limit,
                                                         data_source(datasets), protocol)
        if main:
            write_json(run.results, results)
        status = "finished"
    except FloatingPointError as exc:
        status = f"failed: {exc}"
        raise InputError(f"training diverged ({exc}); the last good epoch's checkpoint is kept in {run.path}") from exc
    except Nb360Error as exc:
        status = f"failed: {exc}"
        raise
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        if main:
            _end_session(run, manifest, status)
    return Evaluation(run_dir=run.path, results=results, resumed=resumed)


def _attack_plan(spec: EvalSpec, card: TaskCard, datasets: dict[str, Any]) -> tuple[Any, ...] | None:
    """(threat, its description, attack settings) of the attacks to run after training, or None for none."""
    from .attacks import attack_settings, default_attacks
    from ..threats import build_threat

    names = default_attacks(card) if spec.attacks is None else spec.attacks
    if not names:
        if spec.eps is not None or spec.eps_unit is not None or spec.attack_overrides or spec.attack_limit:
            raise InputError("--eps, --eps-unit, --attack-limit and attack settings need attacks to run: add "
                             "--attacks fgsm,pgd,pgd-strong")
        return None
    settings = attack_settings(names, spec.attack_overrides)
    threat, description = build_threat(card, datasets["train"], spec.eps, spec.eps_unit)
    return threat, description, settings


def _run_seed(spec: EvalSpec, card: TaskCard, run: RunDir, config: dict[str, Any], model_desc: dict[str, Any],
              datasets: dict[str, Any], seed: int, device: Any, main: bool, progress: bool, manifest: dict[str, Any],
              epoch_hook: EpochHook | None) -> dict[str, Any]:
    """Train one seed (or resume it, or read its finished result); return its result entry."""
    from ..training import fit, objective_for, seed_everything

    if run.seed_result(seed).exists():
        return read_json(run.seed_result(seed), "seed result")
    fields, extra = config["train"], {}
    if model_desc.get("backbone") == "wrn-asha":  # tune this seed first (or read its finished tuning)
        from .asha import prepare_seed

        model_desc, fields, extra = prepare_seed(spec, card, run, config, seed, device, progress and main)
    cfg = train_config(fields, seed)
    seed_everything(seed)
    model = build_model(card, model_desc)
    state, start = None, 0
    last: dict[str, Any] = {}
    if run.checkpoint(seed).exists():
        state = load_checkpoint(run.checkpoint(seed))
        if state.get("config_sha256") != _digest(config):
            raise InputError(f"the checkpoint {run.checkpoint(seed)} belongs to another configuration; delete it to "
                             "restart that seed")
        model.load_state_dict(state["model"])
        start, last = int(state["epoch"]) + 1, state["record"]
        if main:
            manifest["sessions"][-1]["resumed_from"][str(seed)] = start
            write_json(run.manifest, manifest)
    if main:
        _truncate_log(run.log(seed), start)
    objective = objective_for(card, datasets["train"])
    epochs, every = cfg.epochs, spec.eval_every
    bars = _Progress(seed, epochs, start, len(datasets["train"]), cfg.batch_size, enabled=progress and main)
    digest = _digest(config)

    def on_epoch(epoch: int, record: dict[str, Any]) -> None:
        nonlocal last
        last = _strip_times(record)
        if main:
            line = {"epoch": epoch, "lr": record["lr"], "train": record["train"], "wall_time": _now()}
            if "test" in record:
                line["test"] = record["test"]
            with open(run.log(seed), "a", encoding="utf-8") as f:
                f.write(json.dumps(_json_ready(line), sort_keys=True) + "\n")
            save_checkpoint(run.checkpoint(seed), {**record["_state"](), "epoch": epoch, "record": last,
                                                   "config_sha256": digest})
        bars.epoch_done(record, card.metric.name)
        if epoch_hook is not None:
            epoch_hook(seed, epoch)

    try:
        fit(model, datasets["train"], {"test": datasets["test"]}, objective, cfg, device, on_epoch=on_epoch,
            start_epoch=start, state=state, on_batch=bars.batch_done,
            eval_epochs=lambda e: (e + 1) % every == 0 or e == epochs - 1)
    finally:
        bars.close()
    result = {"seed": seed, "epochs": epochs, "train": last.get("train", {}), "test": last.get("test", {}), **extra}
    if main:
        write_json(run.seed_result(seed), result)
    return _json_ready(result)


def _tuning_cluster(model: dict[str, Any]) -> Any:
    """A local Ray instance around the seeds of a wrn-asha run (none for other models)."""
    import contextlib

    if model.get("backbone") != "wrn-asha":
        return contextlib.nullcontext()
    from .asha import RayContext

    return RayContext(cpus=None)


class _Progress:
    """tqdm bars on stderr: epochs of a seed, and batches of the running epoch."""

    def __init__(self, seed: int, epochs: int, start: int, samples: int, batch_size: int, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self.batches = max(1, -(-samples // batch_size))
        self.outer = tqdm(total=epochs, initial=start, desc=f"seed {seed}", unit="epoch", file=sys.stderr,
                          dynamic_ncols=True)
        self.inner = None

    def batch_done(self) -> None:
        """Advance the batch bar."""
        if not self.enabled:
            return
        if self.inner is None:
            self.inner = self._tqdm(total=self.batches, desc="  train", unit="batch", leave=False, file=sys.stderr,
                                    dynamic_ncols=True)
        self.inner.update(1)

    def epoch_done(self, record: dict[str, Any], metric: str) -> None:
        """Advance the epoch bar and show the latest figures."""
        if not self.enabled:
            return
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        figures = {"loss": f"{record['train']['loss']:.4g}"}
        if "test" in record:
            figures[f"test {metric}"] = f"{record['test'][metric]:.4g}"
        self.outer.set_postfix(figures)
        self.outer.update(1)

    def close(self) -> None:
        """Close the bars."""
        if self.enabled:
            if self.inner is not None:
                self.inner.close()
            self.outer.close()
