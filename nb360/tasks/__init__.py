"""The task registry: the ten NAS-Bench-360 task cards (`tasks/<name>.toml`), parsed and validated.

Imports no torch. `get_task(name)` returns a `TaskCard`; `list_tasks()` returns all of them.
The data loaders live in `nb360.data`.
"""

from __future__ import annotations

from .card import DataFile, Metric, Source, TaskCard, TrainingProtocol
from .registry import TASK_ORDER, card_dirs, cards_dir, get_task, list_tasks, task_data_dir, task_names
from .schema import SCHEMA_VERSION, parse_card, read_card

__all__ = [
    "DataFile", "Metric", "SCHEMA_VERSION", "Source", "TASK_ORDER", "TaskCard", "card_dirs", "cards_dir",
    "TrainingProtocol", "get_task", "list_tasks", "parse_card", "read_card", "task_data_dir", "task_names",
]
