"""CIFAR-10 from the python-pickle release (cifar-10-python.tar.gz or its extracted folder), no torchvision.

E2RNAS's preprocessing (yuezhixiong/NAS-Benchmark DARTS/utils.py `_data_transforms_cifar10`): the
transform's mean/std, RandomCrop(32, 4) + horizontal flip + Cutout(16) for training. The search
split is E2RNAS's train_portion 0.5 by index: [0, 25000) weights, [25000, 50000) architecture.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ..errors import InputError
from ._common import TaskData
from .cifar100 import Cifar100Dataset, read_batch, read_members

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
MEAN = (0.49139968, 0.48215827, 0.44653124)
STD = (0.24703233, 0.24348505, 0.26158768)
NUM_CLASSES = 10
TRAIN_PORTION = 0.5  # E2RNAS train_search.py --train_portion


def read_batches(data: TaskData) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (uint8 (50000, 3, 32, 32), int64 labels), "test": (...)}: the five training batches in order."""
    parts = read_members(data, ARCHIVE, FOLDER, (*TRAIN_BATCHES, TEST_BATCH),
                         lambda stream, label: read_batch(stream, label, data, label_key="labels",
                                                          num_classes=NUM_CLASSES))
    train = [parts[name] for name in TRAIN_BATCHES]
    return {"train": (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
            "test": parts[TEST_BATCH]}


def split_images(images: np.ndarray, labels: np.ndarray, test: tuple[np.ndarray, np.ndarray], split_mode: str,
                 mean: tuple[float, ...], std: tuple[float, ...], augment: bool) -> dict[str, Dataset | None]:
    """search: train_portion 0.5 by index (weights half, architecture half as val); retrain: all / test."""
    def dataset(x: np.ndarray, y: np.ndarray, train: bool) -> Cifar100Dataset:
        return Cifar100Dataset(x, y, train=train, mean=mean, std=std)

    test_set = dataset(*test, train=False)
    if split_mode == "retrain":
        return {"train": dataset(images, labels, augment), "val": None, "test": test_set}
    n = int(np.floor(TRAIN_PORTION * len(images)))
    return {"train": dataset(images[:n], labels[:n], augment), "val": dataset(images[n:], labels[n:], False),
            "test": test_set}


def load(data: TaskData, split_mode: str, *, augment: bool = True, **options: Any) -> dict[str, Dataset | None]:
    """search: training images [0, 25000) / [25000, 50000) / test; retrain: all 50,000 / test.

    `augment=False` turns the training augmentation off.
    """
    if options:
        raise InputError(f"cifar10 takes only the `augment` option, got {sorted(options)}")
    parts = read_batches(data)
    return split_images(*parts["train"], parts["test"], split_mode, MEAN, STD, augment)
