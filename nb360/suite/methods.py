"""The methods a suite can run, read from nb360's registries (so a method added there appears here).

- tabular: every algorithm of `nb360.search.tabular.ALGORITHMS`, searching an NB201 table of the
  task (`--table TASK=PATH`; Darcy Flow defaults to the embedded table), then the found cell is
  retrained on the task (`nb360 evaluate --arch`);
- weight-sharing: every method of `nb360.search.supernet.config.METHODS` in every space its
  `default_config` accepts, named `<method>-<space>` (e.g. `gaea-darts`); the found cell or genotype
  is retrained on the task;
- baselines: the card's backbone (`wrn`, as NAS-Bench-360's "WRN / default") and NAS-Bench-360's
  tuned and non-neural baselines of `nb360.evaluate` (`wrn-asha`, `xgboost`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError

# the published row (method, variant) each suite method reproduces, where one does (tasks.md §6)
PUBLISHED_ROWS: dict[str, tuple[str, str]] = {
    "wrn": ("WRN", "default"), "wrn-asha": ("WRN", "ASHA (tuned)"), "xgboost": ("XGBoost", "default"),
    "gaea-darts": ("DARTS", "GAEA"),
}


@dataclass(frozen=True)
class SuiteMethod:
    """One method of a suite."""

    name: str  # as the suite names it (unit directories, tables)
    kind: str  # "tabular", "supernet" or "baseline"
    base: str  # the registry's name: tabular algorithm, supernet method or evaluate backbone
    space: str | None  # search space (supernet: nb201 or darts; tabular: nb201)
    label: str

    @property
    def published(self) -> tuple[str, str] | None:
        """The (method, variant) of the published row this method reproduces, if any."""
        return PUBLISHED_ROWS.get(self.name)


def available_methods() -> dict[str, SuiteMethod]:
    """Every method a suite can run, by name."""
    from ..evaluate.spec import BASELINE_CHOICES
    from ..search import METHODS as SEARCH_METHODS
    from ..search.supernet.config import METHODS as SUPERNET
    from ..search.supernet.config import SPACES, default_config
    from ..search.tabular import ALGORITHMS

    out: dict[str, SuiteMethod] = {}
    for name in ALGORITHMS:
        info = SEARCH_METHODS.get(name)
        out[name] = SuiteMethod(name, "tabular", name, "nb201",
                                f"{name.upper()} on a table" + (f" ({info.summary})" if info else ""))
    for method in SUPERNET:
        for space in SPACES:
            try:
                default_config(method, "ninapro", space=space)
            except InputError:  # e.g. PC-DARTS searches the DARTS space only
                continue
            name = f"{method}-{space}"
            out[name] = SuiteMethod(name, "supernet", method, space, f"{method.upper()} ({space.upper()} space)")
    out["wrn"] = SuiteMethod("wrn", "baseline", "default", None, "WRN (the card's backbone, default settings)")
    for name in BASELINE_CHOICES:
        label = {"wrn-asha": "WRN tuned by ASHA", "xgboost": "XGBoost"}.get(name, name)
        out[name] = SuiteMethod(name, "baseline", name, None, label)
    return out


def resolve(names: tuple[str, ...] | list[str], default_space: str) -> list[SuiteMethod]:
    """The methods named (a weight-sharing method without a space gets `default_space`); InputError for others."""
    methods = available_methods()
    out = []
    for name in names:
        key = name if name in methods else f"{name}-{default_space}"
        if key not in methods:
            raise InputError(f"unknown suite method {name!r}; known: {', '.join(methods)} (a weight-sharing method "
                             f"without a space runs in --space, now {default_space})")
        out.append(methods[key])
    seen = [m.name for m in out]
    if len(set(seen)) != len(seen):
        raise InputError(f"--methods names one method twice: {' '.join(seen)}")
    return out
