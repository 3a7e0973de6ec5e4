"""Retrain an NB201 architecture, a DARTS-space genotype or a backbone with a task's protocol; score it on test.

`evaluate(EvalSpec(...), run_dir)` trains once per seed on the retrain split (train + val) and
evaluates on the test split, writing a run directory:

    RUN_DIR/config.json                  everything that decides the numbers; a rerun with the same
                                         config resumes, a different one is refused
    RUN_DIR/manifest.json                provenance: nb360 version and git revision, torch/CUDA/cuDNN,
                                         device, command lines, seeds, sha256 of every data file, and
                                         one entry per session (start/end times, status)
    RUN_DIR/seed-<s>/log.jsonl           one JSON line per epoch (lr, train and test figures, times)
    RUN_DIR/seed-<s>/checkpoints/last.pt the full training state after the last finished epoch
    RUN_DIR/seed-<s>/result.json         that seed's final figures
    RUN_DIR/results.json                 every seed, mean +- std, the card's reference results

A DARTS-space genotype (`genotype=`: DARTS text, JSON, a published name such as "DARTS_V2", or a
file holding one, e.g. a search's genotype.json) is retrained as its evaluation network (20 cells,
C=36) with NAS-Bench-360's GAEA evaluation protocol for the task (`protocol="nb360"`: 150 epochs,
SGD lr 0.025 cosine, drop-path 0.3, grad clip 5, the task's batch size; tasks.md §7,
`nb360.search.supernet.darts_settings`) or DARTS's CIFAR protocol (`protocol="darts"`: 600
epochs, batch 96, auxiliary head 0.4, drop-path 0.2).

results.json and result.json hold no times or dates, so identical runs write identical bytes
(on the CPU, where torch's algorithms are deterministic). An interrupted run resumes from each
seed's last checkpoint and ends with the same results as an uninterrupted one. Under torchrun
the ranks train data-parallel and only rank 0 writes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .cpu import wait_policy
from .errors import DataError, InputError, Nb360Error
from .space import nb201
from .tasks import TaskCard, get_task

RESULTS_FORMAT = "nb360-evaluate-results/1"
CONFIG_FORMAT = "nb360-evaluate-config/1"
MANIFEST_FORMAT = "nb360-evaluate-manifest/1"
BACKBONE_CHOICES = ("wrn", "resnet1d", "dense-wrn", "default")
DARTS_PROTOCOLS = ("nb360", "darts")
STD_NOTE = "population standard deviation over seeds (numpy std, ddof=0)"

EpochHook = Callable[[int, int], None]  # (seed, epoch) after the epoch's checkpoint is on disk


@dataclass
class EvalSpec:
    """What to evaluate: a task, one model (an NB201 `arch`, a DARTS `genotype` or a `backbone`), seeds, settings."""

    task: str
    data_root: str
    arch: str | int | None = None  # NB201 index or arch string
    backbone: str | None = None  # wrn, resnet1d, dense-wrn or default (the card's baseline backbone)
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int | None = None  # None: the card's; fewer shortens the protocol (recorded as such)
    device: str = "cpu"
    channels: int | None = None  # network C (NB201 default 16; DARTS: the protocol's, 36)
    cells: int = 5  # NB201 network N
    genotype: str | None = None  # DARTS-space genotype: text, JSON, published name or a file holding one
    protocol: str = "nb360"  # DARTS genotypes: "nb360" (NAS-Bench-360's GAEA evaluation) or "darts" (DARTS CIFAR)
    layers: int | None = None  # DARTS network cells (default: the protocol's, 20)
    pooling: str = "original"  # point-2D WRN pooling: NB360's rules ("original") or "global"
    eval_every: int = 1  # evaluate on the test split every k epochs (and always after the last)
    loader_options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise InputError on impossible settings."""
        if sum(x is not None for x in (self.arch, self.backbone, self.genotype)) != 1:
            raise InputError("give exactly one of --arch (an NB201 cell: index or arch string), --genotype (a "
                             f"DARTS-space genotype) or --backbone ({', '.join(BACKBONE_CHOICES)})")
        if self.protocol not in DARTS_PROTOCOLS:
            raise InputError(f"unknown DARTS evaluation protocol {self.protocol!r}: choose "
                             f"{', '.join(DARTS_PROTOCOLS)}")
        if self.layers is not None and self.layers < 1:
            raise InputError(f"--layers must be >= 1, got {self.layers}")
        if self.backbone is not None and self.backbone not in BACKBONE_CHOICES:
            raise InputError(f"unknown backbone {self.backbone!r}: choose one of {', '.join(BACKBONE_CHOICES)}")
        if not self.seeds:
            raise InputError("give at least one seed (--seeds 0 1 2)")
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise InputError(f"seeds must be distinct non-negative integers, got {list(self.seeds)}")
        if self.epochs is not None and self.epochs < 1:
            raise InputError(f"--epochs must be >= 1, got {self.epochs}")
        if self.eval_every < 1:
            raise InputError(f"--eval-every must be >= 1, got {self.eval_every}")
        if (self.channels is not None and self.channels < 1) or self.cells < 1:
            raise InputError(f"--channels and --cells must be >= 1, got {self.channels} and {self.cells}")
        if self.pooling not in ("original", "global"):
            raise InputError(f"--pooling must be original or global, got {self.pooling!r}")


# ----------------------------------------------------------------------------- model and protocol
def read_genotype(value: str) -> str:
    """DARTS genotype text from text, JSON, a published name, or a file (its text or JSON, e.g. a search's
    genotype.json / result.json with a "genotype" entry)."""
    from .space import darts

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
    from .models import default_backbone

    name = spec.backbone
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


def build_model(card: TaskCard, model: dict[str, Any]) -> Any:
    """Build the network a `model_description` describes."""
    from .models import build

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


def _darts_settings(card: TaskCard, protocol: str) -> dict[str, Any]:
    """The DARTS evaluation protocol's settings for a task (NAS-Bench-360's GAEA evaluation, or DARTS's CIFAR one)."""
    from .search.supernet.darts_settings import DARTS_EVAL, EVAL_COMMON, task_settings

    if protocol == "darts":
        return {**DARTS_EVAL, "lr_horizon": DARTS_EVAL["epochs"], "drop_path_horizon": DARTS_EVAL["epochs"],
                "auxiliary_weight": DARTS_EVAL["auxiliary_weight"] if card.topology != "dense2d" else 0.0,
                "uncertain": [], "note": ""}
    t = task_settings(card.name)
    return {**EVAL_COMMON, "C": t.eval_C, "batch_size": t.eval_batch_size, "lr_horizon": t.lr_horizon,
            "drop_path_horizon": t.drop_path_horizon, "auxiliary_weight": t.auxiliary_weight, "source": t.eval_source,
            "uncertain": [t.note] if t.note else [], "note": t.note}


def darts_protocol(card: TaskCard, protocol: str = "nb360",
                   epochs: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainConfig fields without the seed, a description) of a DARTS evaluation protocol for the task.

    Cosine annealing stepped per epoch and the drop-path ramp use the protocol's horizons (NAS-Bench-360:
    T_max 600 on 2D point tasks, 150 otherwise; drop-path over 600 epochs in 2D, 150 in 1D); with
    `epochs` changed, both horizons scale with it.
    """
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
    from .training import TrainConfig

    values = dict(fields)
    values["milestones"] = tuple(values["milestones"])
    return TrainConfig(**values, seed=seed)


def _params(card: TaskCard, model: dict[str, Any]) -> int:
    """Parameter count of a model; DARTS networks without the auxiliary head (DARTS's convention)."""
    from .models import count_parameters, count_parameters_darts

    net = build_model(card, model)
    return count_parameters_darts(net) if model["kind"] == "darts" else count_parameters(net)


# ----------------------------------------------------------------------------- files
def _json_ready(value: Any) -> Any:
    """Plain JSON: numpy scalars to Python, non-finite floats to null, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (a temporary file renamed over the target), keys sorted: same data, same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(_json_ready(payload), indent=2, sort_keys=True, allow_nan=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file of a run directory; DataError naming the file when it is unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"the {what} {path} is not valid JSON ({exc}); the run directory is damaged: evaluate "
                        "into a new --out directory") from exc


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(_json_ready(payload), sort_keys=True).encode()).hexdigest()


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    return [] if old == new else [f"{prefix}: {_short(old)} there, {_short(new)} now"]


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _checkpoint_safe(value: Any) -> Any:
    """Numpy arrays to tensors (and back in `_from_checkpoint`) so checkpoints load with weights_only=True."""
    import torch

    if isinstance(value, dict):
        return {k: _checkpoint_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_checkpoint_safe(v) for v in value)
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(value.astype(np.int64) if value.dtype == np.uint32 else value),
                "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_checkpoint(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return value["__ndarray__"].numpy().astype(value["dtype"])
        return {k: _from_checkpoint(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_checkpoint(v) for v in value)
    return value


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a half-written checkpoint."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(_checkpoint_safe(state), tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint` (tensors and plain data only: loaded with weights_only)."""
    import torch

    try:
        return _from_checkpoint(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # torch raises many kinds for truncated or foreign files
        raise DataError(f"cannot read the checkpoint {path} ({type(exc).__name__}: {exc}); delete it to restart that "
                        "seed from epoch 0, or evaluate into a new --out directory") from exc


def _strip_times(record: dict[str, Any]) -> dict[str, Any]:
    """A fit record without wall times (they differ between identical runs) or private entries."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key.startswith("_"):
            continue
        out[key] = {k: v for k, v in value.items() if k != "time"} if isinstance(value, dict) else value
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def default_run_dir(spec: EvalSpec, root: str | os.PathLike[str] = "runs") -> Path:
    """runs/evaluate-<task>-<model>-<UTC time>."""
    what = f"arch{spec.arch}" if spec.arch is not None and str(spec.arch).isdigit() else (
        "arch" if spec.arch is not None else "genotype" if spec.genotype is not None else str(spec.backbone))
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"evaluate-{spec.task}-{what}-{stamp}"


# ----------------------------------------------------------------------------- run directory
@dataclass
class RunDir:
    """The files of one evaluation run."""

    path: Path

    @property
    def config(self) -> Path:
        """config.json."""
        return self.path / "config.json"

    @property
    def manifest(self) -> Path:
        """manifest.json."""
        return self.path / "manifest.json"

    @property
    def results(self) -> Path:
        """results.json."""
        return self.path / "results.json"

    def seed_dir(self, seed: int) -> Path:
        """seed-<s>/."""
        return self.path / f"seed-{seed}"

    def log(self, seed: int) -> Path:
        """seed-<s>/log.jsonl."""
        return self.seed_dir(seed) / "log.jsonl"

    def checkpoint(self, seed: int) -> Path:
        """seed-<s>/checkpoints/last.pt."""
        return self.seed_dir(seed) / "checkpoints" / "last.pt"

    def seed_result(self, seed: int) -> Path:
        """seed-<s>/result.json."""
        return self.seed_dir(seed) / "result.json"


def read_log(path: Path) -> list[dict[str, Any]]:
    """The epoch records of a log.jsonl (a torn last line, from a crash mid-write, is skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _truncate_log(path: Path, keep_below: int) -> None:
    """Drop log lines of epochs >= keep_below (written after the checkpoint a resume starts from)."""
    records = [r for r in read_log(path) if r.get("epoch", -1) < keep_below]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(json.dumps(_json_ready(r), sort_keys=True) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, path)


def _prepare(run: RunDir, config: dict[str, Any]) -> bool:
    """Create the run directory or check it belongs to `config`; True when resuming."""
    if run.config.exists():
        old = read_json(run.config, "run configuration")
        if old != _json_ready(config):
            diffs = _differences(old, _json_ready(config))
            listed = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
            raise InputError(f"run directory {run.path} holds a run with a different configuration ({listed}); "
                             "rerun with the same options to resume it, or choose a new --out directory")
        return True
    if run.path.exists() and any(run.path.iterdir()):
        raise InputError(f"{run.path} exists and is not an nb360 evaluate run directory (no config.json); choose a "
                         "new --out directory")
    write_json(run.config, config)
    return False


# ----------------------------------------------------------------------------- manifest
def _environment(device: Any) -> dict[str, Any]:
    import torch

    from .build.merge import environment

    env = environment(str(device))
    env["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    env["device"] = env["gpu"] if device.type == "cuda" else env["cpu"]
    env["torch_threads"] = torch.get_num_threads()
    env["omp_wait_policy"] = wait_policy()
    env["host"] = socket.gethostname()
    env["numpy"] = np.__version__
    return env


def _start_session(run: RunDir, spec: EvalSpec, config: dict[str, Any], device: Any, processes: int,
                   command: list[str], data_files: dict[str, Any], data_dir: str) -> dict[str, Any]:
    env = _environment(device)
    if run.manifest.exists():
        manifest = read_json(run.manifest, "manifest")
    else:
        manifest = {"format": MANIFEST_FORMAT, "nb360": __version__, "git_revision": env["git_revision"],
                    "git_dirty": env["git_dirty"], "environment": env, "command": command,
                    "seeds": list(spec.seeds), "task": spec.task, "config_sha256": _digest(config),
                    "data": {"root": str(spec.data_root), "task_dir": data_dir, "files": data_files},
                    "sessions": []}
    manifest["sessions"].append({"started": _now(), "finished": None, "status": "running", "command": command,
                                 "cwd": os.getcwd(), "processes": processes, "environment": env, "resumed_from": {}})
    write_json(run.manifest, manifest)
    return manifest


def _end_session(run: RunDir, manifest: dict[str, Any], status: str) -> None:
    manifest["sessions"][-1].update(finished=_now(), status=status)
    write_json(run.manifest, manifest)


# ----------------------------------------------------------------------------- results
def data_source(datasets: dict[str, Any]) -> dict[str, Any]:
    """Where the evaluated data came from: the released files, or a generated stand-in (with its settings)."""
    test = datasets.get("test")
    source = getattr(test, "source", "released")
    record = getattr(test, "provenance", None) or {}
    return {"source": source, **({"generator": generator_settings(record)} if source != "released" else {})}


def generator_settings(record: dict[str, Any]) -> dict[str, Any]:
    """The settings that identify a generated set, from its provenance record (darcyflow_generated.json)."""
    return {k: record[k] for k in ("generator", "seed", "n", "resolution") if k in record}


def describe_data(data: dict[str, Any]) -> str:
    """One line on the data's origin: the released files, or a generated stand-in with its settings."""
    if data["source"] == "released":
        return "the released benchmark files"
    g = data.get("generator") or {}
    n = g.get("n")
    parts = [f"{n.get('train')} train + {n.get('test')} test" if isinstance(n, dict) else None,
             f"{g['resolution']}x{g['resolution']}" if "resolution" in g else None,
             f"seed {g['seed']}" if "seed" in g else None, g.get("generator")]
    return f"{data['source'].upper()} stand-in ({', '.join(p for p in parts if p)}), not the released data"


def summarize(config: dict[str, Any], per_seed: list[dict[str, Any]], card: TaskCard,
              data: dict[str, Any] | None = None) -> dict[str, Any]:
    """results.json: per-seed figures, mean +- std, and the card's reference results with their source."""
    data = data or {"source": "released"}
    metric = card.metric.name
    summary: dict[str, Any] = {"std": STD_NOTE, "n": len(per_seed)}
    for key in ("reported", metric):
        values = [r["test"].get(key) for r in per_seed]
        finite = [float(v) for v in values if v is not None and np.isfinite(v)]
        summary[key] = ({"mean": float(np.mean(finite)), "std": float(np.std(finite)), "n": len(finite)}
                        if finite else {"mean": None, "std": None, "n": 0})
    refs = card.reference_results
    model, protocol = config["model"], config["protocol"]
    baseline = model["kind"] == "backbone" and model["backbone"] in ("wrn", "dense-wrn", "resnet1d") and \
        model.get("options", {}).get("pooling", "original") == "original"
    if data["source"] != "released":
        comparable = {"method": None, "variant": None,
                      "note": f"no reference row is comparable: the data is a {data['source']} stand-in, not the "
                              "released benchmark data the reference results were measured on"}
    elif baseline and not protocol["changed"]:
        comparable = {"method": "WRN", "variant": "default",
                      "note": "same backbone and protocol as the card's baseline row"}
    elif model["kind"] == "darts" and protocol.get("name") == "nb360" and not protocol["changed"]:
        comparable = {"method": "DARTS", "variant": "GAEA",
                      "note": "same evaluation network and protocol as the card's DARTS / GAEA row (whose genotypes "
                              "came from NAS-Bench-360's own GAEA PC-DARTS searches)"}
    else:
        why = "the protocol was changed (--epochs)" if protocol["changed"] else "a different model"
        comparable = {"method": None, "variant": None,
                      "note": f"no reference row is directly comparable: {why}"}
    return {
        "format": RESULTS_FORMAT, "task": card.name, "title": card.title,
        "metric": {"name": metric, "reported_as": card.metric.reported_as, "direction": card.metric.direction,
                   "reported": "the lower-is-better form the reference table uses (1 - x for mAP, F1, AUROC)"},
        "model": {**model, "params": config.get("params")},
        "protocol": {**protocol, "train": config["train"], "eval_every": config["eval_every"]},
        "seeds": [r["seed"] for r in per_seed], "per_seed": per_seed, "summary": summary,
        "reference": {"source": refs["source"], "units": refs["units"], "rows": refs["rows"],
                      "other": refs.get("other", []), "comparable": comparable},
        "processes": config["processes"], "device_type": config["device_type"], "data": data,
    }


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
    from .training import distributed

    spec.validate()
    card = get_task(spec.task)
    joined_here = not distributed.is_active()  # leave a caller's own process group alone
    launch, device = distributed.init(spec.device)
    main = launch.rank == 0
    try:
        path = distributed.broadcast(str(run_dir if run_dir is not None else default_run_dir(spec)) if main else None)
        return _evaluate(spec, card, RunDir(Path(path)), device, launch.world_size, main, progress,
                         command if command is not None else list(sys.argv), epoch_hook)
    finally:
        if joined_here:
            distributed.shutdown()


def _collective(main: bool, action: Callable[[], Any]) -> Any:
    """Run `action` on rank 0 and hand its result (or its nb360 error) to every rank."""
    from .training import distributed

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
    from .data import load
    from .data.fingerprint import fingerprint
    from .tasks import task_data_dir
    from .training import distributed

    model = model_description(card, spec)
    if model["kind"] == "darts":
        train_fields, protocol = darts_protocol(card, spec.protocol, spec.epochs)
    else:
        train_fields, protocol = retrain_protocol(card, spec.epochs)
    datasets = load(spec.task, spec.data_root, "retrain", **spec.loader_options)
    if datasets.get("test") is None:
        raise DataError(f"{spec.task}: the retrain split has no test set to evaluate on")

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
        per_seed = []
        for seed in spec.seeds:
            per_seed.append(_run_seed(spec, card, run, config, model, datasets, seed, device, main, progress,
                                      manifest, epoch_hook))
            distributed.barrier()
        results = summarize(config, per_seed, card, data_source(datasets))
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


def _run_seed(spec: EvalSpec, card: TaskCard, run: RunDir, config: dict[str, Any], model_desc: dict[str, Any],
              datasets: dict[str, Any], seed: int, device: Any, main: bool, progress: bool, manifest: dict[str, Any],
              epoch_hook: EpochHook | None) -> dict[str, Any]:
    """Train one seed (or resume it, or read its finished result); return its result entry."""
    from .training import fit, objective_for, seed_everything

    if run.seed_result(seed).exists():
        return read_json(run.seed_result(seed), "seed result")
    cfg = train_config(config["train"], seed)
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
    result = {"seed": seed, "epochs": epochs, "train": last.get("train", {}), "test": last.get("test", {})}
    if main:
        write_json(run.seed_result(seed), result)
    return _json_ready(result)


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
