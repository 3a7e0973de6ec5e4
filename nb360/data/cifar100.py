"""CIFAR-100 from the python-pickle release (cifar-100-python.tar.gz or its extracted folder), no torchvision."""

from __future__ import annotations

import pickle
import tarfile
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ._common import TaskData, safe_pickle_load

ARCHIVE = "cifar-100-python.tar.gz"
FOLDER = "cifar-100-python"
MEAN = (0.5071, 0.4867, 0.4408)
STD = (0.2675, 0.2565, 0.2761)
NUM_CLASSES = 100
VAL_SPLIT = 0.2  # the last 20% of the training images (by index, no shuffle) are val: 40,000 / 10,000
PAD, CUTOUT = 4, 16


def read_batch(stream: IO[bytes], name: str, data: TaskData, *, label_key: str = "fine_labels",
                num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """One python-pickle batch of the CIFAR releases: (uint8 (N, 3, 32, 32), int64 labels)."""
    try:
        batch = safe_pickle_load(stream, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise data.corrupt(name, f"{type(exc).__name__}: {exc}") from exc
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    try:
        images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (KeyError, ValueError) as exc:
        raise data.corrupt(name, f"expected keys data (N, 3072) and {label_key} ({exc})") from exc
    if len(images) != len(labels) or (len(labels) and (labels.min() < 0 or labels.max() >= num_classes)):
        raise data.corrupt(name, f"image and label counts differ or labels are outside 0..{num_classes - 1}")
    return images, labels


def read_members(data: TaskData, archive_name: str, folder: str, members: tuple[str, ...],
                 read: Callable[[IO[bytes], str], Any]) -> dict[str, Any]:
    """{member: read(stream, label)} from the extracted `folder` or, when it lacks a member, from the tarball."""
    directory = data.path(folder)
    if all((directory / m).is_file() for m in members):
        out = {}
        for m in members:
            with open(directory / m, "rb") as stream:
                out[m] = read(stream, f"{folder}/{m}")
        return out
    if not data.has(archive_name):
        raise data.missing([archive_name], hint=f"or its extracted folder {folder}/ with {', '.join(members)}")
    out = {}
    try:
        with tarfile.open(data.path(archive_name), "r:*") as archive:
            for m in members:
                try:
                    member = archive.extractfile(f"{folder}/{m}")
                except KeyError:
                    member = None
                if member is None:
                    raise data.corrupt(archive_name, f"it has no member {folder}/{m}")
                with member:
                    out[m] = read(member, f"{archive_name}:{folder}/{m}")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise data.corrupt(archive_name, f"{type(exc).__name__}: {exc}") from exc
    return out


def read_batches(data: TaskData) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (uint8 (50000, 3, 32, 32), int64 labels), "test": (...)} from the folder or the tarball."""
    return read_members(data, ARCHIVE, FOLDER, ("train", "test"),
                        lambda stream, label: read_batch(stream, label, data))


class Cifar100Dataset(Dataset):
    """CIFAR-100 images (uint8, kept as released) with the benchmark's transform applied per item.

    train=True: zero-pad 4 + random 32x32 crop, horizontal flip (p=0.5), normalize, Cutout(16);
    train=False: normalize only. Randomness comes from torch's generator (seed it for reproducibility).
    `mean`/`std` default to CIFAR-100's (CIFAR-10 and SVHN pass their own).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, train: bool,
                 mean: tuple[float, ...] = MEAN, std: tuple[float, ...] = STD) -> None:
        self.images = images
        self.labels = labels
        self.train = train
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.array(self.images[index], dtype=np.float32)) / 255.0
        if self.train:
            x = random_crop(x, PAD)
            if torch.rand(()) < 0.5:
                x = x.flip(-1)
        x = (x - self.mean) / self.std
        if self.train:
            x = cutout(x, CUTOUT)
        return x, torch.tensor(int(self.labels[index]), dtype=torch.int64)


def random_crop(x: torch.Tensor, pad: int) -> torch.Tensor:
    """torchvision RandomCrop(size, padding=pad): zero-pad, then a uniformly placed crop of the original size."""
    _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    top = int(torch.randint(0, 2 * pad + 1, ()))
    left = int(torch.randint(0, 2 * pad + 1, ()))
    return padded[:, top:top + h, left:left + w]


def cutout(x: torch.Tensor, length: int) -> torch.Tensor:
    """Cutout: zero a length x length square centred on a uniform pixel, clipped at the border."""
    _, h, w = x.shape
    cy, cx = int(torch.randint(0, h, ())), int(torch.randint(0, w, ()))
    y1, y2 = max(cy - length // 2, 0), min(cy + length // 2, h)
    x1, x2 = max(cx - length // 2, 0), min(cx + length // 2, w)
    x = x.clone()
    x[:, y1:y2, x1:x2] = 0.0
    return x


def load(data: TaskData, split_mode: str, *, augment: bool = True, **options: Any) -> dict[str, Dataset | None]:
    """search: train images [0, 40000) / val [40000, 50000) / test; retrain: all 50,000 / test.

    `augment=False` turns the training augmentation off (e.g. to compute features).
    """
    if options:
        raise InputError(f"cifar100 takes only the `augment` option, got {sorted(options)}")
    parts = read_batches(data)
    train_x, train_y = parts["train"]
    test = Cifar100Dataset(*parts["test"], train=False)
    if split_mode == "retrain":
        return {"train": Cifar100Dataset(train_x, train_y, train=augment), "val": None, "test": test}
    n = int((1 - VAL_SPLIT) * len(train_x))
    return {"train": Cifar100Dataset(train_x[:n], train_y[:n], train=augment),
            "val": Cifar100Dataset(train_x[n:], train_y[n:], train=False), "test": test}
