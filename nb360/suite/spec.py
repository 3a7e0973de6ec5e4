"""What a suite runs: methods × tasks × seeds, the data, and the options that shorten each protocol."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

SUITE_FORMAT = "nb360-suite/1"
# settings a resumed suite may change: where and how units run, not what they compute
RUNTIME_SETTINGS = frozenset({"executor", "workers", "ray_address", "unit_timeout", "retries"})


@dataclass
class SuiteSpec:
    """A methods × tasks × seeds grid and everything that decides its numbers (saved as the suite's suite.json)."""

    methods: tuple[str, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    data_root: str = "data"  # holds <task>/ for every task (or is the task directory when there is one task)
    space: str = "darts"  # the space of weight-sharing methods named without one (NAS-Bench-360's GAEA: DARTS)
    tables: dict[str, str] = field(default_factory=dict)  # task -> NB201 table for tabular methods
    device: str = "cpu"
    threads: int = 1  # torch threads per unit (and per ASHA trial / for XGBoost)
    loader_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> nb360.data.load options
    # shortened protocols: None keeps each card's / method's reference setting
    search_epochs: int | None = None
    search_channels: int | None = None
    search_cells: int | None = None  # NB201: cells per stage N; DARTS: search cells
    search_batch_size: int | None = None
    search_max_steps: int | None = None
    eval_epochs: int | None = None
    eval_channels: int | None = None
    eval_cells: int | None = None  # NB201: N; DARTS: evaluation cells (layers)
    asha_trials: int | None = None
    asha_concurrency: int | None = None
    xgb_rounds: int | None = None
    tabular_budget: float | None = None  # simulated seconds; default about 20 queries' worth
    # runtime (may change between sessions of one suite)
    executor: str = "local"
    workers: int = 1
    ray_address: str | None = None
    unit_timeout: float | None = None  # seconds; a unit running longer is stopped and marked failed
    retries: int = 1  # Ray: re-runs of a unit whose worker died

    def shortened(self) -> list[str]:
        """The options that shorten a reference protocol (empty: every method runs its reference protocol)."""
        names = ("search_epochs", "search_channels", "search_cells", "search_batch_size", "search_max_steps",
                 "eval_epochs", "eval_channels", "eval_cells", "asha_trials", "xgb_rounds")
        return [n for n in names if getattr(self, n) is not None]

    def validate(self) -> SuiteSpec:
        """Raise InputError on impossible settings."""
        from ..devices import check_device_name
        from ..tasks import task_names

        if not self.methods or not self.tasks or not self.seeds:
            raise InputError("a suite needs at least one method (--methods), task (--tasks) and seed (--seeds)")
        known = task_names()
        bad = [t for t in self.tasks if t not in known]
        if bad:
            raise InputError(f"unknown task(s) {', '.join(bad)}; known: {', '.join(known)}")
        for name, values in (("methods", self.methods), ("tasks", self.tasks), ("seeds", self.seeds)):
            if len(set(values)) != len(values):
                raise InputError(f"--{name} lists a value twice: {' '.join(map(str, values))}")
        if any(s < 0 for s in self.seeds):
            raise InputError(f"seeds must be non-negative, got {list(self.seeds)}")
        check_device_name(self.device)
        for name in ("search_epochs", "search_channels", "search_cells", "search_batch_size", "search_max_steps",
                     "eval_epochs", "eval_channels", "eval_cells", "asha_trials", "asha_concurrency", "xgb_rounds"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.tabular_budget is not None and not self.tabular_budget > 0:
            raise InputError(f"--tabular-budget must be positive, got {self.tabular_budget}")
        if self.threads < 1 or self.workers < 1 or self.retries < 0:
            raise InputError(f"--threads and --workers must be >= 1 and --retries >= 0, got {self.threads}, "
                             f"{self.workers}, {self.retries}")
        if self.unit_timeout is not None and not self.unit_timeout > 0:
            raise InputError(f"--unit-timeout must be positive, got {self.unit_timeout}")
        if self.executor not in ("local", "ray"):
            raise InputError(f"unknown executor {self.executor!r}: choose local or ray")
        unknown = sorted(set(self.tables) - set(self.tasks))
        if unknown:
            raise InputError(f"--table names task(s) {', '.join(unknown)} that the suite does not run")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        out = dataclasses.asdict(self)
        for key in ("methods", "tasks", "seeds"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteSpec:
        """The inverse of to_dict."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown suite settings {', '.join(unknown)}")
        data = dict(data)
        for key in ("methods", "tasks", "seeds"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def computing(self) -> dict[str, Any]:
        """The settings that decide the numbers (what a resumed suite must keep)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_SETTINGS}
