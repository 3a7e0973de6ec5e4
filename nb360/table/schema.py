"""The nb360 table schema (version 1): names and layout shared by the writer, the reader and the docs.

See docs/table-format.md. A table is an HDF5 file whose 4096-byte user block carries a small nb360
header (csrc/table/table_file.h) pointing at `/nb360_index`, a uint8 dataset holding UTF-8 JSON
that names every run group and the HDF5 object-header addresses of its datasets.
"""

from __future__ import annotations

import re
from typing import Any

SCHEMA_VERSION = 1
USER_BLOCK_SIZE = 4096
INDEX_DATASET = "nb360_index"
ARCHS_DATASET = "archs"
RUNS_GROUP = "runs"

# Datasets of a run group (task, hp, seed), all contiguous and uncompressed:
#   arch_rows       int32   (A,)       row of each arch of the space, -1 when the run does not record it
#   curves          float32 (R, M, E)  per-epoch metrics of the R recorded archs, M = len(metrics)
#   curves_present  uint8   (R, M, E)  1 where recorded; 0 where not (the value is then NaN, never used)
#   scalars         float64 (R, S)     per-arch scalars, S = len(scalars)
#   scalars_present uint8   (R, S)
RUN_DATASETS = ("arch_rows", "curves", "curves_present", "scalars", "scalars_present")

# Curve names are "<split>-<quantity>": split is "train" or an eval split name as recorded
# (NATS-Bench: "x-valid", "x-test", "ori-test"), quantity one of QUANTITIES.
QUANTITIES = ("loss", "accuracy", "accuracy5", "time")
# Quantities to minimise (the rest are maximised) when a search or `best` does not say: losses,
# times, and the task metrics that nb360.metrics.DIRECTION marks "min".
MINIMISED_QUANTITIES = ("loss", "time", "error", "rel_l2", "mae8", "mlr8", "lr12", "mlr12", "fnr", "auroc_error")

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


def run_group_path(task: str, hp: str, seed: int) -> str:
    """HDF5 path of the run group for (task, hp, seed)."""
    for what, value in (("task", task), ("hp", hp)):
        if not _SAFE_NAME.match(value):
            raise ValueError(f"{what} name {value!r} may hold only letters, digits and _.+-")
    return f"/{RUNS_GROUP}/{task}/hp{hp}/seed{int(seed)}"


def metric_direction(metric: str) -> str:
    """'min' for losses, times and errors; 'max' otherwise (accuracies)."""
    return "min" if metric.rsplit("-", 1)[-1] in MINIMISED_QUANTITIES else "max"


def split_of(metric: str) -> tuple[str, str]:
    """Split a curve name into (split, quantity): 'ori-test-accuracy' -> ('ori-test', 'accuracy')."""
    for q in sorted(QUANTITIES, key=len, reverse=True):
        if metric.endswith("-" + q):
            return metric[: -len(q) - 1], q
    split, _, quantity = metric.rpartition("-")
    return split, quantity


def validate_index(index: dict[str, Any]) -> None:
    """Raise ValueError when a decoded /nb360_index lacks what the reader needs."""
    for key in ("schema_version", "space", "num_archs", "runs"):
        if key not in index:
            raise ValueError(f"table index lacks '{key}'")
    for run in index["runs"]:
        for key in ("task", "hp", "seed", "epochs", "metrics", "scalars", "datasets"):
            if key not in run:
                raise ValueError(f"table index run lacks '{key}'")
        missing = [d for d in RUN_DATASETS if d not in run["datasets"]]
        if missing:
            raise ValueError(f"table index run {run['task']}/hp{run['hp']}/seed{run['seed']} lacks datasets {missing}")
