"""NinaPro DB5: ninapro_{train,val,test}.npy (N, 52, 16) and label_{train,val,test}.npy -> (1, 16, 52) inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..errors import InputError
from ._common import TaskData, load_npy
from ._datasets import concat

NUM_CLASSES = 18
PARTS = ("train", "val", "test")


def read_part(data: TaskData, part: str) -> TensorDataset:
    """One released part: inputs transposed (N, 52, 16) -> (N, 1, 16, 52) float32, labels int64."""
    x_path, y_path = data.require(f"ninapro_{part}.npy", f"label_{part}.npy")
    x = load_npy(x_path, data, mmap=False)
    y = load_npy(y_path, data, mmap=False)
    if x.ndim != 3 or x.shape[1:] != (52, 16):
        raise data.corrupt(x_path.name, f"expected shape (N, 52, 16), got {x.shape}")
    y = np.asarray(y).reshape(-1)
    if len(y) != len(x):
        raise data.corrupt(y_path.name, f"{len(y)} labels for {len(x)} inputs in {x_path.name}")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise data.corrupt(y_path.name, f"labels must be in 0..{NUM_CLASSES - 1}, got {y.min()}..{y.max()}")
    inputs = np.ascontiguousarray(np.transpose(np.asarray(x, dtype=np.float32), (0, 2, 1))[:, None])
    return TensorDataset(torch.from_numpy(inputs), torch.from_numpy(y))


def load(data: TaskData, split_mode: str, **options: Any) -> dict[str, Dataset | None]:
    """search: the three released parts; retrain: train+val concatenated, test."""
    if options:
        raise InputError(f"ninapro takes no loader options, got {sorted(options)}")
    data.require(*[f"{kind}_{part}.npy" for part in PARTS for kind in ("ninapro", "label")])
    parts = {part: read_part(data, part) for part in PARTS}
    if split_mode == "retrain":
        return {"train": concat([parts["train"], parts["val"]]), "val": None, "test": parts["test"]}
    return dict(parts)
