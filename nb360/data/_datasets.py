"""Generic torch datasets shared by the task loaders."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


class ArrayDataset(Dataset):
    """Items (input, target) read lazily from array-likes (numpy arrays or memory maps) by row index.

    `rows` selects and orders the rows to expose (default: all); `input_fn` turns one raw input row
    into a float32 tensor; `target_dtype` is the target's torch dtype.
    """

    def __init__(self, inputs: Any, targets: Any, *, rows: Sequence[int] | np.ndarray | None = None,
                 input_fn: Callable[[np.ndarray], np.ndarray] | None = None,
                 target_dtype: torch.dtype = torch.int64,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if len(inputs) != len(targets):
            raise ValueError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs = inputs
        self.targets = targets
        self.rows = np.arange(len(inputs)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.input_fn = input_fn
        self.target_dtype = target_dtype
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        row = int(self.rows[index])
        x = np.asarray(self.inputs[row])
        if self.input_fn is not None:
            x = self.input_fn(x)
        x_t = torch.from_numpy(np.array(x, dtype=np.float32, copy=True))
        if self.transform is not None:
            x_t = self.transform(x_t)
        y_t = torch.as_tensor(np.array(self.targets[row], copy=True), dtype=self.target_dtype)
        return x_t, y_t


def concat(datasets: Sequence[Dataset]) -> Dataset:
    """The datasets one after the other (retrain's train + val)."""
    return torch.utils.data.ConcatDataset(list(datasets))
