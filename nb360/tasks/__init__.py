"""The task registry: the task cards (`tasks/<name>.toml`), parsed and validated.

The ten NAS-Bench-360 tasks (suite "nb360") and the E2RNAS paper's own datasets (suite "e2rnas",
outside the benchmark). Imports no torch. `get_task(name)` returns a `TaskCard`; `list_tasks()`
returns all of them, `list_tasks("nb360")` the ten.
The data loaders live in `nb360.data`.
"""

from __future__ import annotations

from .card import DataFile, Metric, Source, TaskCard, TrainingProtocol
from .registry import (
    SUITE_TITLES,
    TASK_ORDER,
    card_dirs,
    cards_dir,
    get_task,
    list_tasks,
    task_data_dir,
    task_names,
)
from .robustness import UNITS as ROBUSTNESS_UNITS
from .schema import SCHEMA_VERSION, SUITES, parse_card, read_card

__all__ = [
    "DataFile", "Metric", "ROBUSTNESS_UNITS", "SCHEMA_VERSION", "SUITES", "SUITE_TITLES", "Source", "TASK_ORDER",
    "TaskCard", "card_dirs", "cards_dir",
    "TrainingProtocol", "get_task", "list_tasks", "parse_card", "read_card", "task_data_dir", "task_names",
]
