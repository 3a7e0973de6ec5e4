"""Settings of a weight-sharing search (DARTS, PC-DARTS, GAEA, E2RNAS on the NB201 or DARTS space; GDAS, SETN, ENAS,
random weight-sharing on the NB201 space), with defaults.

Defaults follow search-methods.md: DARTS as NAS-Bench-201's DARTS-V1 (§3.2: C=16, N=5, 50 epochs,
batch 64, SGD 0.025 → 0.001 cosine, nesterov, momentum 0.9, wd 5e-4, grad clip 5; Adam(α) 3e-4,
betas (0.5, 0.999), wd 1e-3; first order, `second_order=True` for DARTS-V2); GAEA as its NB201
config (§3.4: exponentiated gradient on the simplex, arch lr 0.1, wd 3e-4, C=24, 25 epochs,
`none` excluded); E2RNAS as the spec (§6: DARTS-V1 settings plus the upper-level objectives
acc, adv, size, MGDA on L2-normalised gradients, FGSM-RS with step 1.25ε at the card's ε and unit
(2/255 in pixels on the image tasks, as the authors), size constraint `abs` with scale 1e5, and the
authors' second-order (unrolled) step). The deviations from the authors' settings that nb360 keeps
are listed, with their reasons, in `methods/e2rnas.py` (`AUTHORS_DEVIATIONS`).

DARTS space (`space="darts"`, search-methods.md §3, tasks.md §7): an 8-cell, C=16 supernet; the
train split halved for weights and architecture (`arch_data="train-half"`); SGD momentum 0.9
without nesterov, weight decay 3e-4, grad clip 5, 50 epochs, with each task's NAS-Bench-360 batch
size (`darts_settings.py`; for the full-channel DARTS and E2RNAS at most DARTS's 64). Per method: DARTS lr 0.025 → 0.001, Adam(α) 3e-4 (first order;
`second_order=True` for DARTS-V2); PC-DARTS K=4 partial channels, edge normalisation, lr 0.1 →
0.001, Adam(α) 6e-4, architecture steps from epoch 15; GAEA (GAEA PC-DARTS) K=4, edge weights,
exponentiated gradient lr 0.1 on op and edge weights, lr 0.1 → 0, no warm-up; E2RNAS the DARTS
settings, second order, objectives acc, adv, size (size of the 20-cell evaluation network).

GDAS, SETN, ENAS and random weight-sharing (`NATS_COMMON`, `METHOD_DEFAULTS`) take the settings of
the script NAS-Bench-360 ran them with, AutoDL's `exps/NATS-algos/search-cell.py`
(rtu715/NAS-Bench-360@34eae45 `precompute/ninapro/search-cell.py`, its `algo.sh` L13-23):
`configs/nas-benchmark/algos/weight-sharing.config` (100 epochs, batch 64, SGD 0.025 cosine to
0.001, nesterov, momentum 0.9, wd 5e-4, no gradient clipping; validation batches of 512), C=16,
N=5, BN without affine parameters or running statistics (`--affine 0 --track_running_stats 0`),
Adam(α) 3e-4, betas (0.5, 0.999), wd 1e-3, eps 1e-8 (ENAS: lr 1e-3, wd 0, eps 1e-3 from
`algo.sh` L23), GDAS τ from 10 to 0.1, 100 candidate architectures scored on validation. Their
weight step comes before the architecture step, as in that script. One deviation, named in
`NATS_DEVIATIONS`: NATS's run-all.sh passes 200 epochs for its own runs; NAS-Bench-360's algo.sh
does not, so the config's 100 apply.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ...errors import InputError

METHODS = ("darts", "gaea", "e2rnas", "pcdarts", "gdas", "setn", "enas", "random-ws")
NATS_METHODS = ("gdas", "setn", "enas", "random-ws")  # AutoDL NATS-algos search-cell.py; NB201 space only
SPACES = ("nb201", "darts")
OBJECTIVES = ("acc", "adv", "size", "flops")
SIZE_PROXIES = ("expected", "supernet")
CONSTRAINTS = ("abs", "min", "max", "none")
ARCH_DATA = ("val", "train-half")
LOWER_LEVELS = ("clean", "fgsm-rs")


@dataclass
class SearchConfig:
    """Everything that determines a weight-sharing search run (saved as the run's config.json)."""

    method: str
    task: str
    data_root: str | None = None
    seed: int = 0
    # network
    space: str = "nb201"  # the search space: "nb201" (NB201 supernet) or "darts" (the DARTS cell space)
    C: int = 16
    N: int = 5  # NB201: cells per stage
    layers: int = 8  # DARTS: search cells
    partial_channels: int = 1  # DARTS: PC-DARTS's K (mixed ops see C/K channels)
    edge_weights: bool = False  # DARTS: PC-DARTS's edge normalisation (β, or GAEA's edge simplex)
    size_net: dict[str, int] = field(default_factory=dict)  # DARTS: C / layers of the network the size is of
    supernet_options: dict[str, Any] = field(default_factory=dict)  # e.g. affine, track_running_stats, mixed
    # data
    batch_size: int = 64
    arch_data: str = "val"  # α steps on the card's val split, or on half of train (DARTS's 50/50)
    max_steps: int | None = None  # cap on steps per epoch (smoke runs)
    loader_options: dict[str, Any] = field(default_factory=dict)  # passed to nb360.data.load
    # weights
    epochs: int = 50
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    grad_clip: float | None = 5.0  # None: no clipping (NATS's search-cell.py)
    lower_level: str = "clean"  # or "fgsm-rs": train the weights on FGSM-RS examples (E2RNAS v1)
    # architecture
    arch_lr: float = 3e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    arch_eps: float = 1e-8  # Adam's eps for α (ENAS: 1e-3, NAS-Bench-360's algo.sh)
    second_order: bool = False
    warmup_epochs: int = 0  # epochs of weight training before the first architecture step (PC-DARTS: 15)
    exclude_none: bool = False  # discretisation (and, for GAEA, the simplex) without the `none` op
    # GDAS, SETN, ENAS, random weight-sharing (AutoDL NATS-algos search-cell.py)
    tau_max: float = 10.0  # GDAS: Gumbel-softmax temperature, linear from tau_max to tau_min over the epochs
    tau_min: float = 0.1
    eval_candidates: int = 100  # SETN/ENAS/random-ws: architectures scored on validation to pick the genotype
    eval_batch_size: int | None = None  # validation batch for that scoring and ENAS's controller (None: batch_size)
    controller_steps: int = 50  # ENAS: controller updates per epoch, each averaging 20 sampled architectures
    # E2RNAS upper level
    objectives: tuple[str, ...] = ("acc",)
    mgda: bool = True
    mgda_solver: str = "fw"
    mgda_max_iter: int = 250
    grad_norm: str = "l2"
    eps: float | None = None  # None: the card's [robustness] eps (E2RNAS: 2/255 in pixels)
    eps_space: str = "card"  # "card" (the card's unit), "pixel" or "normalized" (nb360.threats.search_threat)
    adv_step: float = 1.25  # FGSM-RS step, in units of ε
    size_constraint: str = "abs"
    size_proxy: str = "expected"  # "expected": the evaluation network's params; "supernet": E2RNAS's param_number
    size_target: float | None = None  # in units of size_scale; None: the midpoint of the supernet's range
    size_scale: float = 1e5
    flops_target: float | None = None
    flops_scale: float = 1e8
    # evaluation of the found architecture (inherited weights)
    eval_attacks: bool = True
    pgd_steps: int = 10
    compare_darts: bool = False  # E2RNAS: also run DARTS with the same settings, for the trade-off plot
    device: str = "cpu"

    def validate(self) -> SearchConfig:
        """Raise InputError for values no search can run with; return self."""
        from ...devices import check_device_name

        check_device_name(self.device)
        if self.method not in METHODS:
            raise InputError(f"unknown weight-sharing method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.space not in SPACES:
            raise InputError(f"unknown search space {self.space!r}: choose one of {', '.join(SPACES)}")
        if self.space == "nb201" and (self.method == "pcdarts" or self.partial_channels != 1 or self.edge_weights):
            raise InputError("partial channels and edge normalisation (PC-DARTS) are defined on the DARTS space: add "
                             "--space darts")
        if self.space == "darts":
            if self.layers < 1:
                raise InputError(f"layers must be at least 1, got {self.layers}")
            k = self.partial_channels
            if k < 1 or self.C % k or (self.C // k) % 2:
                raise InputError(f"partial channels K={k} must divide C={self.C} into an even number of channels "
                                 "(e.g. C=16, K=4; C must be even)")
            bad = sorted(set(self.size_net) - {"C", "layers"})
            if bad or any(int(v) < 1 for v in self.size_net.values()):
                raise InputError(f"size_net takes positive C and layers, got {self.size_net}")
        if self.warmup_epochs < 0:
            raise InputError(f"warmup_epochs must be non-negative, got {self.warmup_epochs}")
        positive = {"C": self.C, "batch_size": self.batch_size, "epochs": self.epochs}
        for name, value in positive.items():
            if int(value) < 1:
                raise InputError(f"{name} must be at least 1, got {value}")
        if self.N < 0:
            raise InputError(f"N must be non-negative, got {self.N}")
        for name in ("lr", "arch_lr", "size_scale", "flops_scale", "adv_step"):
            value = getattr(self, name)
            if not value > 0:
                raise InputError(f"{name} must be positive, got {value}")
        if not 0 <= self.lr_min <= self.lr:
            raise InputError(f"lr_min must be in [0, lr], got {self.lr_min}")
        if self.nesterov and not self.momentum > 0:
            raise InputError(f"nesterov momentum needs momentum > 0, got {self.momentum}; set nesterov=False")
        if self.max_steps is not None and self.max_steps < 1:
            raise InputError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.arch_data not in ARCH_DATA:
            raise InputError(f"arch_data must be one of {', '.join(ARCH_DATA)}, got {self.arch_data!r}")
        if self.lower_level not in LOWER_LEVELS:
            raise InputError(f"lower_level must be one of {', '.join(LOWER_LEVELS)}, got {self.lower_level!r}")
        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad or not self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise InputError(f"objectives must be distinct names from {', '.join(OBJECTIVES)}, got "
                             f"{', '.join(self.objectives) or 'none'}")
        if self.method != "e2rnas" and tuple(self.objectives) != ("acc",):
            raise InputError(f"{self.method} optimises the validation loss only; multiple objectives are E2RNAS's "
                             "(--method e2rnas)")
        if self.method == "gaea" and self.second_order:
            raise InputError("GAEA's exponentiated-gradient update is first order; drop --second-order")
        if self.method in NATS_METHODS:
            if self.space != "nb201":
                raise InputError(f"{self.method} searches the NB201 space (as NATS's search-cell.py): drop --space darts")
            if self.second_order:
                raise InputError(f"{self.method} has no second-order step; drop --second-order")
            if not (0 < self.tau_min <= self.tau_max) or self.eval_candidates < 1 or self.controller_steps < 1:
                raise InputError("need 0 < tau_min <= tau_max, eval_candidates >= 1 and controller_steps >= 1; got "
                                 f"{self.tau_min}, {self.tau_max}, {self.eval_candidates}, {self.controller_steps}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise InputError(f"grad_clip must be positive or None (no clipping), got {self.grad_clip}")
        if self.eval_batch_size is not None and self.eval_batch_size < 1:
            raise InputError(f"eval_batch_size must be at least 1, got {self.eval_batch_size}")
        if self.size_constraint not in CONSTRAINTS:
            raise InputError(f"size_constraint must be one of {', '.join(CONSTRAINTS)}, got {self.size_constraint!r}")
        if self.eps is not None and not self.eps >= 0:
            raise InputError(f"eps must be non-negative, got {self.eps}")
        from ...threats import SEARCH_EPS_SPACES

        if self.eps_space not in SEARCH_EPS_SPACES:
            raise InputError(f"eps_space must be one of {', '.join(SEARCH_EPS_SPACES)}, got {self.eps_space!r}")
        if self.size_proxy not in SIZE_PROXIES:
            raise InputError(f"size_proxy must be one of {', '.join(SIZE_PROXIES)}, got {self.size_proxy!r}")
        if self.grad_norm not in ("l2", "loss", "loss+", "none"):
            raise InputError(f"grad_norm must be l2, loss, loss+ or none, got {self.grad_norm!r}")
        if self.mgda_solver not in ("fw", "pgd"):
            raise InputError(f"mgda_solver must be fw or pgd, got {self.mgda_solver!r}")
        if self.mgda_max_iter < 1 or self.pgd_steps < 1:
            raise InputError("mgda_max_iter and pgd_steps must be at least 1")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        out = dataclasses.asdict(self)
        out["objectives"] = list(self.objectives)
        out["arch_betas"] = list(self.arch_betas)
        out["size_net"] = dict(self.size_net)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """The inverse of to_dict (unknown keys refused)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown search settings {', '.join(unknown)}")
        data = dict(data)
        if "objectives" in data:
            data["objectives"] = tuple(data["objectives"])
        if "arch_betas" in data:
            data["arch_betas"] = tuple(data["arch_betas"])
        return cls(**data)


# AutoDL configs/nas-benchmark/algos/weight-sharing.config and search-cell.py's defaults (module docstring)
NATS_COMMON: dict[str, Any] = {"C": 16, "N": 5, "epochs": 100, "batch_size": 64, "eval_batch_size": 512,
                               "lr": 0.025, "lr_min": 0.001, "momentum": 0.9, "nesterov": True,
                               "weight_decay": 5e-4, "grad_clip": None, "arch_lr": 3e-4, "arch_betas": (0.5, 0.999),
                               "arch_weight_decay": 1e-3, "arch_eps": 1e-8,
                               "supernet_options": {"affine": False, "track_running_stats": False}}
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "darts": {},
    # gaea_release: plain momentum for the weights (cnn/train_utils.py setup_optimizer: SGD without nesterov)
    "gaea": {"arch_lr": 0.1, "weight_decay": 3e-4, "C": 24, "epochs": 25, "exclude_none": True, "nesterov": False},
    "e2rnas": {"objectives": ("acc", "adv", "size"), "second_order": True},  # the authors' --unrolled
    "gdas": {**NATS_COMMON, "tau_max": 10.0, "tau_min": 0.1},
    "setn": {**NATS_COMMON, "eval_candidates": 100},
    "enas": {**NATS_COMMON, "arch_lr": 1e-3, "arch_weight_decay": 0.0, "arch_eps": 1e-3, "eval_candidates": 100,
             "controller_steps": 50},
    "random-ws": {**NATS_COMMON, "eval_candidates": 100},
}
# Where nb360's defaults for these methods differ from the script NAS-Bench-360 ran (each with its reason).
NATS_DEVIATIONS: dict[str, str] = {
    "epochs": "100, weight-sharing.config's, as NAS-Bench-360's algo.sh runs it; NATS's own run-all.sh passes "
              "--overwite_epochs 200",
    "evaluation of the supernet each epoch": "GDAS and random-ws are scored on the genotype's path (deterministic); "
              "search-cell.py's valid_func samples a fresh Gumbel / uniform path per batch (a log, not the result)",
    "random-ws architecture step": "skipped: search-cell.py runs a no-grad forward on the validation batch only to "
              "log its loss",
}

# DARTS space: settings every method shares, then each method's own (search-methods.md §1.6, §3.1, §3.3, §3.4).
DARTS_SPACE_COMMON: dict[str, Any] = {"space": "darts", "C": 16, "layers": 8, "epochs": 50, "arch_data": "train-half",
                                      "momentum": 0.9, "nesterov": False, "weight_decay": 3e-4, "grad_clip": 5.0}
DARTS_SPACE_DEFAULTS: dict[str, dict[str, Any]] = {
    "darts": {"lr": 0.025, "lr_min": 0.001, "arch_lr": 3e-4},
    "e2rnas": {"lr": 0.025, "lr_min": 0.001, "arch_lr": 3e-4, "objectives": ("acc", "adv", "size"),
               "second_order": True},
    "pcdarts": {"lr": 0.1, "lr_min": 0.001, "arch_lr": 6e-4, "partial_channels": 4, "edge_weights": True,
                "warmup_epochs": 15},
    "gaea": {"lr": 0.1, "lr_min": 0.0, "arch_lr": 0.1, "partial_channels": 4, "edge_weights": True},
}


def default_config(method: str, task: str, space: str | None = None, **overrides: Any) -> SearchConfig:
    """The method's reference settings for `task` in `space` (default nb201), with `overrides` (None values ignored).

    In the DARTS space the task's NAS-Bench-360 batch size applies to the partial-channel methods
    (PC-DARTS, GAEA; `darts_settings.SETTINGS`) and caps DARTS's 64 for the full-channel ones, and
    for ECG the epoch is capped at NAS-Bench-360's 20,000 records (`max_steps`).
    """
    if method not in METHODS:
        raise InputError(f"unknown weight-sharing method {method!r}: choose one of {', '.join(METHODS)}")
    space = space or "nb201"
    if space not in SPACES:
        raise InputError(f"unknown search space {space!r}: choose one of {', '.join(SPACES)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if space == "darts" and method in NATS_METHODS:
        raise InputError(f"{method} searches the NB201 space (as NATS's search-cell.py): drop --space darts")
    if space == "nb201":
        if method == "pcdarts":
            raise InputError("PC-DARTS searches the DARTS space (partial channels, edge normalisation): add "
                             "--space darts")
        values: dict[str, Any] = {"method": method, "task": task, **METHOD_DEFAULTS[method]}
    else:
        from .darts_settings import SETTINGS

        values = {"method": method, "task": task, **DARTS_SPACE_COMMON, **DARTS_SPACE_DEFAULTS[method]}
        settings = SETTINGS.get(task)
        if settings is not None:
            # NB360's batch sizes are GAEA PC-DARTS's, whose mixed ops see C/4 channels; full-channel supernets
            # (DARTS, E2RNAS) keep DARTS's 64, or the task's smaller batch where memory bounds it (dense tasks)
            full = values.get("partial_channels", 1) == 1
            values["batch_size"] = min(64, settings.search_batch_size) if full else settings.search_batch_size
    if space == "darts" and _suite(task) == "e2rnas":  # CIFAR-10 / SVHN: the card's val split is the authors' half
        values["arch_data"] = "val"
    values.update(given)
    if space == "darts" and "max_steps" not in given:
        from .darts_settings import SETTINGS

        settings = SETTINGS.get(task)
        if settings is not None and settings.cap_records:
            values["max_steps"] = -(-settings.records_per_epoch // int(values.get("batch_size", 64)))
    try:
        return SearchConfig(**values).validate()
    except TypeError as exc:
        raise InputError(f"bad search setting: {exc}") from None


def _suite(task: str) -> str | None:
    """The task card's suite, or None for a task without a card (tests pass their own cards)."""
    from ...tasks import get_task

    try:
        return get_task(task).suite
    except InputError:
        return None


# Settings a resumed run may change (they do not alter the search itself).
RESUMABLE_CHANGES = frozenset({"device", "data_root", "eval_attacks", "compare_darts"})
