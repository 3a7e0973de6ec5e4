"""The task-card schema: what a `tasks/<name>.toml` card declares, as frozen dataclasses.

Other floors rely on these attribute names: models read `topology`, `in_channels`,
`input_size`, `num_outputs`; downloads read `files`; evaluation reads `loss`, `metric`,
`splits`, `baseline` and `reference_results`. `tasks/README.md` documents the TOML layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Topology = Literal["point2d", "dense2d", "point1d"]
Problem = Literal["multiclass", "multilabel", "regression", "binary-segmentation"]


@dataclass(frozen=True)
class Source:
    """One place a released file can be downloaded from."""

    url: str
    status: Literal["live", "dead", "unknown"] = "unknown"
    note: str = ""


@dataclass(frozen=True)
class DataFile:
    """A released data file, exactly as distributed."""

    name: str  # file name relative to the task's data directory
    size: int | None  # bytes; None when not published
    sha256: str | None  # None when not published (recorded on first download)
    sources: tuple[Source, ...]  # in order of preference
    extract: bool = False  # an archive to unpack after download
    role: str = ""  # what it holds, e.g. "train+val images"
    approx_size: str = ""  # the size as the benchmark states it ("272 MB") when the exact byte count is unknown
    md5: str | None = None  # published md5 (e.g. CIFAR-100's), when one is known


@dataclass(frozen=True)
class Metric:
    """The task's headline metric as the original benchmark computes and reports it."""

    name: str  # key in nb360.metrics, e.g. "error", "map", "rel_l2", "mae8", "fnr", "f1_macro", "auroc"
    direction: Literal["min", "max"]  # of the reported value
    reported_as: str  # how tables report it, e.g. "100 - top-1 accuracy (%)", "1 - F1"
    secondary: tuple[str, ...] = ()  # other metrics reported alongside (e.g. Cosmic "auroc_error")
    computation: str = ""  # exactly how the original code computes it


@dataclass(frozen=True)
class TrainingProtocol:
    """The card's baseline training protocol in machine-readable form (from its `[baseline]` table)."""

    learning_rate: float
    epochs: int
    batch_size: int
    momentum: float
    weight_decay: float
    nesterov: bool  # as the original applies it: only with momentum > 0
    schedule: str  # "step", "cosine" or "constant"
    milestones: tuple[int, ...] = ()  # epochs at which lr *= gamma (for `epochs` epochs)
    gamma: float = 1.0
    step_every: str = "epoch"
    other_fractions: tuple[float, ...] = ()  # milestones for another epoch count: int(f * E) ...
    other_strict: tuple[bool, ...] = ()  # ... + 1 where the original decays only after it (epoch > int(f * E))
    eval_batch_size: int | None = None
    source: str = ""  # where the schedule comes from
    uncertain: tuple[str, ...] = ()

    def milestones_for(self, epochs: int) -> tuple[int, ...]:
        """The decay epochs for a run of `epochs` epochs, as the original's weight_sched computes them."""
        if epochs == self.epochs or self.schedule != "step":
            return self.milestones if self.schedule == "step" else ()
        if self.other_fractions:
            return tuple(int(f * epochs) + int(strict) for f, strict in zip(self.other_fractions, self.other_strict))
        # no rule in the card: scale the milestones proportionally (nb360's choice, recorded as such by callers)
        return tuple(int(m * epochs / self.epochs) for m in self.milestones)


@dataclass(frozen=True)
class TaskCard:
    """One NAS-Bench-360 task."""

    name: str  # registry key, e.g. "cifar100"
    title: str
    topology: Topology
    in_channels: int
    input_size: tuple[int, ...]  # spatial size: (H, W) for 2D, (L,) for 1D
    num_outputs: int  # classes / labels (point tasks) or output channels per position (dense tasks)
    problem: Problem
    loss: str  # e.g. "cross_entropy", "bce_with_logits", "relative_l2", "mse"
    metric: Metric
    license: str
    files: tuple[DataFile, ...] = ()
    splits: dict[str, Any] = field(default_factory=dict)  # search (train/val/test) and retrain (train+val/test)
    baseline: dict[str, Any] = field(default_factory=dict)  # WRN / backbone training protocol
    reference_results: dict[str, Any] = field(default_factory=dict)  # published results with their source
    description: str = ""
    input_layout: str = "CHW"  # layout of one input as nb360's loader yields it ("CHW" for 2D, "CL" for 1D)
    output: str = ""  # what the network predicts, in words
    sample: str = ""  # what one dataset item is, e.g. "(x float32[1,16,52], y int64)"
    preprocessing: dict[str, Any] = field(default_factory=dict)  # steps, train augmentation, eval transform
    quirks: tuple[str, ...] = ()  # behaviours of the original code that nb360 preserves or documents
    uncertain: tuple[str, ...] = ()  # facts the reference marks [uncertain]
    license_note: str = ""
    card_path: str = ""  # the TOML file this card was read from
    suite: str = "nb360"  # "nb360": the ten NAS-Bench-360 tasks; "e2rnas": E2RNAS's datasets, outside the ten
    robustness: dict[str, Any] = field(default_factory=dict)  # threat model and robust metric (tasks/README.md)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One input as the loaders yield it: (C, H, W) for 2D tasks, (C, L) for 1D tasks."""
        return (self.in_channels, *self.input_size)

    def protocol(self) -> TrainingProtocol:
        """The baseline training protocol; DataError when the card lacks the structured fields."""
        b = self.baseline
        missing = [k for k in ("momentum", "weight_decay", "nesterov", "schedule") if k not in b]
        if missing:
            from ..errors import DataError

            raise DataError(f"task card {self.card_path or self.name}: [baseline] lacks {', '.join(missing)}, which "
                            "training needs (see tasks/README.md)")
        schedule = b["schedule"]
        other = schedule.get("other_epochs", {})
        momentum = float(b["momentum"])
        return TrainingProtocol(
            learning_rate=float(b["learning_rate"]), epochs=int(b["epochs"]), batch_size=int(b["batch_size"]),
            momentum=momentum, weight_decay=float(b["weight_decay"]), nesterov=bool(b["nesterov"]) and momentum > 0,
            schedule=schedule["kind"], milestones=tuple(schedule.get("milestones", ())),
            gamma=float(schedule.get("gamma", 1.0)), step_every=schedule["step_every"],
            other_fractions=tuple(float(f) for f in other.get("fractions", ())),
            other_strict=tuple(bool(x) for x in other.get("strict", ())),
            eval_batch_size=b.get("eval_batch_size"), source=schedule.get("source", ""),
            uncertain=tuple(b.get("protocol_uncertain", ())))

    def file(self, name: str) -> DataFile:
        """The released file called `name` (KeyError when the card does not list it)."""
        for data_file in self.files:
            if data_file.name == name:
                return data_file
        raise KeyError(f"task {self.name!r} lists no file {name!r}")
