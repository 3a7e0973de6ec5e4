"""SVHN (cropped digits) from the released MATLAB files train_32x32.mat / test_32x32.mat, read with scipy.io.

X is (32, 32, 3, N) uint8 and y (N, 1) with labels 1..10, 10 meaning the digit 0 (mapped to 0, as
torchvision does). E2RNAS's preprocessing (DARTS/utils.py `_data_transforms_svhn`): its mean/std and
the CIFAR augmentation (crop, horizontal flip, Cutout). Search split: train_portion 0.5 by index.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ..errors import InputError
from ._common import TaskData
from .cifar10 import split_images

FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
MEAN = (0.4377, 0.4438, 0.4728)
STD = (0.1980, 0.2010, 0.1970)
NUM_CLASSES = 10


def read_mat(data: TaskData, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (N, 3, 32, 32), int64 digits 0..9) from one released .mat file."""
    import scipy.io

    (path,) = data.require(name)
    try:
        mat = scipy.io.loadmat(str(path), variable_names=["X", "y"])
    except Exception as exc:  # scipy raises many kinds for truncated, v7.3 or foreign files
        raise data.corrupt(name, f"{type(exc).__name__}: {exc}") from exc
    if "X" not in mat or "y" not in mat:
        raise data.corrupt(name, f"expected variables X and y, found {sorted(k for k in mat if not k.startswith('__'))}")
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if x.dtype != np.uint8:
        raise data.corrupt(name, f"X should be uint8 pixels, got {x.dtype}")
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise data.corrupt(name, f"expected X (32, 32, 3, N) and y (N, 1), got {x.shape} and {mat['y'].shape}")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise data.corrupt(name, f"labels must be 1..10 (10 = digit 0), got {y.min()}..{y.max()}")
    y[y == 10] = 0
    images = np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1)))  # (N, C, H, W)
    return images, y


def load(data: TaskData, split_mode: str, *, augment: bool = True, **options: Any) -> dict[str, Dataset | None]:
    """search: train [0, 36628) / [36628, 73257) / test; retrain: all 73,257 / test (26,032)."""
    if options:
        raise InputError(f"svhn takes only the `augment` option, got {sorted(options)}")
    data.require(*FILES.values())
    train_x, train_y = read_mat(data, FILES["train"])
    return split_images(train_x, train_y, read_mat(data, FILES["test"]), split_mode, MEAN, STD, augment)
