"""Spherical CIFAR-100: s2_cifar100.gz (gzip pickle of train/test images and labels) -> (3, 60, 60) inputs."""

from __future__ import annotations

import gzip
import pickle
import zlib
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..errors import InputError
from ._common import TaskData, safe_pickle_load

FILE = "s2_cifar100.gz"
NUM_CLASSES = 100
VAL_SPLIT = 0.2


def read_archive(data: TaskData) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (images float32, labels int64), "test": (...)} from the gzip pickle.

    The pickle must be read whole (about 2.6 GB of float32 images); each split is cast to float32
    and the original array dropped before the next one to keep the peak low.
    """
    (path,) = data.require(FILE)
    try:
        with gzip.open(path, "rb") as stream:
            payload = safe_pickle_load(stream, encoding="latin1")
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise data.corrupt(FILE, f"{type(exc).__name__}: {exc}") from exc
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("train", "test"):
        try:
            part = payload.pop(split)
            images, labels = part["images"], part["labels"]
        except (KeyError, TypeError, AttributeError) as exc:
            raise data.corrupt(FILE, f"expected {{'train': {{'images', 'labels'}}, 'test': ...}}, no {exc}") from exc
        images = np.asarray(images)
        if images.ndim != 4:
            raise data.corrupt(FILE, f"{split} images should be (N, C, H, W), got {images.shape}")
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        if len(labels) != len(images):
            raise data.corrupt(FILE, f"{split}: {len(labels)} labels for {len(images)} images")
        if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            raise data.corrupt(FILE, f"{split} labels must be 0..{NUM_CLASSES - 1}")
        out[split] = (np.ascontiguousarray(images, dtype=np.float32), labels)
        del images, part
    return out


def load(data: TaskData, split_mode: str, **options: Any) -> dict[str, Dataset | None]:
    """search: first 80% of train / last 20% as val; retrain: all train; test as released."""
    if options:
        raise InputError(f"spherical takes no loader options, got {sorted(options)}")
    parts = read_archive(data)
    train_x, train_y = (torch.from_numpy(a) for a in parts["train"])
    test = TensorDataset(*(torch.from_numpy(a) for a in parts["test"]))
    if split_mode == "retrain":
        return {"train": TensorDataset(train_x, train_y), "val": None, "test": test}
    n_train = int((1 - VAL_SPLIT) * len(train_x))
    return {"train": TensorDataset(train_x[:n_train], train_y[:n_train]),
            "val": TensorDataset(train_x[n_train:], train_y[n_train:]), "test": test}
