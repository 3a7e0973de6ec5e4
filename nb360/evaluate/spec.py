"""What to evaluate: EvalSpec and the choices it validates against."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

RESULTS_FORMAT = "nb360-evaluate-results/1"
CONFIG_FORMAT = "nb360-evaluate-config/1"
MANIFEST_FORMAT = "nb360-evaluate-manifest/1"
BACKBONE_CHOICES = ("wrn", "resnet1d", "dense-wrn", "default")
# NAS-Bench-360's non-NAS baselines beside the backbones: the card's backbone tuned by ASHA (evaluate/asha.py) and
# gradient-boosted trees on the flattened inputs (evaluate/xgboost_baseline.py); each runs its own protocol.
BASELINE_CHOICES = ("wrn-asha", "xgboost")
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
    protocol: str | None = None  # DARTS genotypes: "nb360" (NAS-Bench-360's GAEA evaluation) or "darts" (DARTS
    # CIFAR, E2RNAS's); None: "darts" for the E2RNAS suite, "nb360" otherwise
    layers: int | None = None  # DARTS network cells (default: the protocol's, 20)
    pooling: str = "original"  # point-2D WRN pooling: NB360's rules ("original") or "global"
    eval_every: int = 1  # evaluate on the test split every k epochs (and always after the last)
    loader_options: dict[str, Any] = field(default_factory=dict)
    # settings of the wrn-asha / xgboost baselines (asha.ASHA_OPTIONS, xgboost_baseline.XGB_OPTIONS); {} = NB360's
    baseline_options: dict[str, Any] = field(default_factory=dict)
    # adversarial evaluation after retraining (nb360.evaluate.attacks); None: the suite's default attacks
    attacks: tuple[str, ...] | None = None
    eps: float | None = None  # None: the card's [robustness] eps
    eps_unit: str | None = None  # None: the card's unit
    attack_overrides: dict[str, Any] = field(default_factory=dict)  # {"pgd-strong.restarts": 2, ...}
    attack_limit: int | None = None  # attack only the first N test items (quick looks; marked not comparable)

    def validate(self) -> None:
        """Raise InputError on impossible settings."""
        if sum(x is not None for x in (self.arch, self.backbone, self.genotype)) != 1:
            raise InputError("give exactly one of --arch (an NB201 cell: index or arch string), --genotype (a "
                             f"DARTS-space genotype) or --backbone ({', '.join(BACKBONE_CHOICES)})")
        if self.protocol is not None and self.protocol not in DARTS_PROTOCOLS:
            raise InputError(f"unknown DARTS evaluation protocol {self.protocol!r}: choose "
                             f"{', '.join(DARTS_PROTOCOLS)}")
        if self.layers is not None and self.layers < 1:
            raise InputError(f"--layers must be >= 1, got {self.layers}")
        if self.backbone is not None and self.backbone not in BACKBONE_CHOICES + BASELINE_CHOICES:
            raise InputError(f"unknown backbone {self.backbone!r}: choose one of "
                             f"{', '.join(BACKBONE_CHOICES + BASELINE_CHOICES)}")
        if self.baseline_options and self.backbone not in BASELINE_CHOICES:
            raise InputError(f"baseline options ({', '.join(sorted(self.baseline_options))}) apply to --backbone "
                             f"{' or '.join(BASELINE_CHOICES)} only")
        if not self.seeds:
            raise InputError("give at least one seed (--seeds 0 1 2)")
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise InputError(f"seeds must be distinct non-negative integers, got {list(self.seeds)}")
        if self.epochs is not None and not 1 <= self.epochs <= 100_000:
            raise InputError(f"--epochs must be in 1..100,000, got {self.epochs}")
        if self.eval_every < 1:
            raise InputError(f"--eval-every must be >= 1, got {self.eval_every}")
        if (self.channels is not None and self.channels < 1) or self.cells < 1:
            raise InputError(f"--channels and --cells must be >= 1, got {self.channels} and {self.cells}")
        if self.attack_limit is not None and self.attack_limit < 1:
            raise InputError(f"--attack-limit must be >= 1, got {self.attack_limit}")
        if self.eps is not None and not (self.eps >= 0 and self.eps != float("inf")):
            raise InputError(f"--eps must be a finite non-negative number, got {self.eps}")
        if self.pooling not in ("original", "global"):
            raise InputError(f"--pooling must be original or global, got {self.pooling!r}")

