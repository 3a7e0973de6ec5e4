"""DeepSEA: deepsea_filtered.npz (x_* (N, 1000, 4) one-hot, y_* (N, 36)) -> (4, 1000) inputs, float labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ._common import TaskData, npz_array
from ._datasets import ArrayDataset

FILE = "deepsea_filtered.npz"
LENGTH, BASES, NUM_LABELS = 1000, 4, 36


def _to_channels_first(row: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(row.T, dtype=np.float32)  # (1000, 4) -> (4, 1000)


def read_part(data: TaskData, part: str, *, mmap: bool = True) -> ArrayDataset:
    """One of train/val/test, read lazily (memory-mapped when the npz member is stored uncompressed)."""
    (path,) = data.require(FILE)
    x = npz_array(path, f"x_{part}", data, mmap=mmap)
    y = npz_array(path, f"y_{part}", data, mmap=mmap)
    if x.ndim != 3 or x.shape[1:] != (LENGTH, BASES):
        raise data.corrupt(FILE, f"x_{part} should be (N, {LENGTH}, {BASES}), got {x.shape}")
    if y.ndim != 2 or y.shape != (len(x), NUM_LABELS):
        raise data.corrupt(FILE, f"y_{part} should be ({len(x)}, {NUM_LABELS}), got {y.shape}")
    return ArrayDataset(x, y, input_fn=_to_channels_first, target_dtype=torch.float32)


def load(data: TaskData, split_mode: str, *, mmap: bool = True, **options: Any) -> dict[str, Dataset | None]:
    """search: the released train/val/test arrays; retrain: x_train only (the original does not merge val).

    `mmap=False` reads the arrays into memory instead of mapping them.
    """
    if options:
        raise InputError(f"deepsea takes only the `mmap` option, got {sorted(options)}")
    data.require(FILE)
    if split_mode == "retrain":
        return {"train": read_part(data, "train", mmap=mmap), "val": None, "test": read_part(data, "test", mmap=mmap)}
    return {part: read_part(data, part, mmap=mmap) for part in ("train", "val", "test")}
