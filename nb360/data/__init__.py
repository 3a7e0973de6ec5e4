"""Data loaders for the ten NAS-Bench-360 tasks and the E2RNAS suite (CIFAR-10, SVHN), reading the released file
formats into torch datasets.

`load(task, root, split_mode)` returns {"train", "val", "test"} datasets with the task card's split
semantics: "search" gives train/val/test, "retrain" gives train (+val where the benchmark merges it)
and test, with "val" set to None. Importing this package does not import torch; `load` does.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..tasks import task_names
from ._common import SPLIT_MODES, TaskData, check_split_mode, download_command

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.data import Dataset

# task name -> module under nb360.data holding its `load(data, split_mode, **options)`.
LOADERS: dict[str, str] = {
    "cifar100": "cifar100", "spherical": "spherical", "ninapro": "ninapro", "fsd50k": "fsd50k",
    "darcyflow": "darcyflow", "psicov": "psicov", "cosmic": "cosmic", "ecg": "ecg", "satellite": "satellite",
    "deepsea": "deepsea", "cifar10": "cifar10", "svhn": "svhn",
}

__all__ = ["LOADERS", "SPLIT_MODES", "download_command", "load"]


def load(task_name: str, root: str | os.PathLike[str], split_mode: str = "search",
         **options: Any) -> dict[str, Dataset | None]:
    """Datasets {"train", "val", "test"} of task `task_name` read from the data root `root`.

    `root` is the data root (the task's files in `root/<task>/`) or the task directory itself.
    `split_mode` is "search" (train/val/test) or "retrain" (train = train+val as the benchmark does it,
    val = None). `options` are loader-specific (see each module's `load`). Missing files raise
    `nb360.errors.DataError` naming the file and the `nb360 data download` command.
    """
    check_split_mode(split_mode)
    if task_name not in LOADERS:
        known = task_names()
        raise InputError(f"no data loader for task {task_name!r}; known tasks: {', '.join(known)}")
    module = importlib.import_module(f"{__name__}.{LOADERS[task_name]}")
    data = TaskData(task_name, root)
    splits = module.load(data, split_mode, **options)
    if split_mode == "retrain":
        splits["val"] = None
    return splits
