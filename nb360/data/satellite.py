"""Satellite: satellite_{train,test}.npy (pickled dicts, data (N, 46), label 1..24) -> z-scored (1, 46) series."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..errors import InputError
from ._common import TaskData, load_npy

NUM_CLASSES = 24
LENGTH = 46


def read_file(data: TaskData, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, 1, 46) float32, z-scored per series along time, and labels 0..23 int64."""
    (path,) = data.require(name)
    payload = load_npy(path, data, mmap=False)
    try:
        record = payload[()] if isinstance(payload, np.ndarray) and payload.dtype == object else payload
        series, labels = record["data"], record["label"]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise data.corrupt(name, f"expected a pickled dict with keys 'data' and 'label' ({exc})") from exc
    series = np.asarray(series, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1).astype(np.int64) - 1  # released labels are 1..24
    if series.ndim != 2 or series.shape[1] != LENGTH or len(labels) != len(series):
        raise data.corrupt(name, f"expected data (N, {LENGTH}) with N labels, got {series.shape} and {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise data.corrupt(name, f"labels must be 1..{NUM_CLASSES}, got {labels.min() + 1}..{labels.max() + 1}")
    # Per-series z-score along time in float64 (as the original's numpy code), then float32.
    std = series.std(axis=1, keepdims=True)
    std[std == 0] = 1.0  # a constant series would divide by zero; the original would produce NaN
    normalized = ((series - series.mean(axis=1, keepdims=True)) / std).astype(np.float32)[:, None, :]
    return normalized, labels


def load(data: TaskData, split_mode: str, **options: Any) -> dict[str, Dataset | None]:
    """search: val = the last len(test) series of the train file; retrain: the whole train file."""
    if options:
        raise InputError(f"satellite takes no loader options, got {sorted(options)}")
    data.require("satellite_train.npy", "satellite_test.npy")
    train_x, train_y = read_file(data, "satellite_train.npy")
    test_x, test_y = read_file(data, "satellite_test.npy")
    test = TensorDataset(torch.from_numpy(test_x), torch.from_numpy(test_y))
    if split_mode == "retrain":
        return {"train": TensorDataset(torch.from_numpy(train_x), torch.from_numpy(train_y)), "val": None,
                "test": test}
    n_val = len(test_x)
    if n_val >= len(train_x):
        raise data.corrupt("satellite_train.npy", f"it has {len(train_x)} series, not more than the "
                           f"{n_val} the validation split takes")
    return {
        "train": TensorDataset(torch.from_numpy(train_x[:-n_val]), torch.from_numpy(train_y[:-n_val])),
        "val": TensorDataset(torch.from_numpy(train_x[-n_val:]), torch.from_numpy(train_y[-n_val:])),
        "test": test,
    }
