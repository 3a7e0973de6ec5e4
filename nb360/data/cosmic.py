"""Cosmic: deepCR.ACS-WFC.{train,test}.tar (stacked image / cosmic-ray mask / ignore mask .npy) -> 128x128 crops.

Reads the tars member by member (or the extracted npy_train/ npy_test/ folders). Keeps only filter
f435w and the galaxy (GAL) fields, crops [64:192, 64:192] and applies the sky augmentation.
"""

from __future__ import annotations

import io
import pickle
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ._archive import Archive, DirectoryArchive, open_tree
from ._common import TaskData, read_npy

TARS = {"train": "deepCR.ACS-WFC.train.tar", "test": "deepCR.ACS-WFC.test.tar"}
FILTER = "f435w"
# deepCR's field-type table (credited in the original cosmic_dataset.py): the <prop_id>_<vis_num> fields
# marked 'GAL'. The benchmark keeps only these; 'GC' and 'EX' fields are dropped.
GAL_FIELDS = frozenset({
    "10760_2", "10760_4", "13737_2", "13737_3", "9490_a3", "12513_2", "12513_3", "10182_pb", "10182_pd",
    "10584_13", "10342_3", "14343_1", "13057_1", "10260_7", "10260_5", "10407_3", "13364_95", "10190_28",
    "10190_13", "9490_a2", "13691_11", "12058_12", "12058_16", "12058_1", "12058_6", "14704_1", "13804_6",
})
CROP_OFFSET, CROP = 64, 128  # get_fixed_crop: rows and columns [64, 192)
SKY_RANGE = (-0.9, 3.0)  # aug_sky
F_VAL = 0.1
EVAL_SKY = ("fixed", "random", "off")


def image_members(archive: Archive, part: str) -> list[str]:
    """Sorted members npy_<part>/f435w/<prop>/<vis>/<n>_*.npy of GAL fields (sky.npy excluded)."""
    top = f"npy_{part}"
    selected = []
    for name in archive.names():
        parts = PurePosixPath(name).parts
        if top not in parts:
            continue
        rest = parts[parts.index(top) + 1:]
        if len(rest) != 4 or not rest[3].endswith(".npy") or rest[3] == "sky.npy":
            continue
        filt, prop, vis, _ = rest
        if filt == FILTER and f"{prop}_{vis}" in GAL_FIELDS:
            selected.append(name)
    return sorted(selected)


class CosmicDataset(Dataset):
    """Items (image float32[1,128,128], cr mask float32[1,128,128], ignore mask float32[1,128,128]).

    Sky augmentation (when the image's directory has sky.npy): + sky[n - 1] * U(-0.9, 3), n being
    the file-name prefix. `sky` = "random": a fresh draw per access (training, and the original's
    evaluation); "fixed": a draw seeded by (seed, index), the same at every evaluation; "off": none.
    """

    def __init__(self, archive: Archive, members: list[str], *, sky: str, seed: int = 0, stream: int = 0) -> None:
        if sky not in EVAL_SKY:
            raise InputError(f"sky augmentation must be one of {', '.join(EVAL_SKY)}, got {sky!r}")
        self.archive = archive
        self.members = list(members)
        self.sky = sky
        self.seed = seed
        self.stream = stream  # keeps the fixed draws of val and test apart
        self._sky_levels: dict[str, np.ndarray | None] = {}

    def __len__(self) -> int:
        return len(self.members)

    def _sky_level(self, member: str) -> float:
        directory = str(PurePosixPath(member).parent)
        if directory not in self._sky_levels:
            sky_member = f"{directory}/sky.npy"
            try:
                levels = read_npy(io.BytesIO(self.archive.read(sky_member)), what=sky_member)
                self._sky_levels[directory] = np.asarray(levels).reshape(-1)
            except KeyError:
                self._sky_levels[directory] = None
        levels = self._sky_levels[directory]
        if levels is None:
            return 0.0
        number = int(PurePosixPath(member).name.split("_")[0])
        return float(levels[number - 1])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        member = self.members[index]
        try:
            stack = read_npy(io.BytesIO(self.archive.read(member)), what=member)
        except (ValueError, EOFError, pickle.UnpicklingError) as exc:
            raise ValueError(f"{self.archive.label}: {member} is not a valid .npy ({exc})") from exc
        if stack.ndim != 3 or stack.shape[0] not in (2, 3):
            raise ValueError(f"{member}: expected a (2 or 3, H, W) stack, got {stack.shape}")
        image, mask = stack[0], stack[1]
        ignore = stack[2] if stack.shape[0] == 3 else np.zeros_like(stack[0])
        window = np.s_[CROP_OFFSET:CROP_OFFSET + CROP, CROP_OFFSET:CROP_OFFSET + CROP]
        image, mask, ignore = image[window], mask[window], ignore[window]
        if image.shape != (CROP, CROP):
            raise ValueError(f"{member}: image {stack.shape[1:]} is too small for the fixed 128 crop at (64, 64)")
        offset = 0.0
        if self.sky != "off":
            level = self._sky_level(member)
            if level:
                if self.sky == "random":
                    u = float(torch.empty(()).uniform_(*SKY_RANGE))
                else:
                    u = float(np.random.default_rng((self.seed, self.stream, index)).uniform(*SKY_RANGE))
                offset = level * u
        return _plane(image + offset), _plane(mask), _plane(ignore)


def _plane(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)[None])


def open_part(data: TaskData, part: str) -> Archive:
    """The train or test tree: an extracted npy_<part>/ folder (in the task dir or below) or the tar."""
    base = data.find_dir(f"npy_{part}")
    if base is not None and (base / f"npy_{part}").is_dir():
        return DirectoryArchive(base)
    (path,) = data.require(TARS[part], hint=f"or its extracted npy_{part}/ folder")
    return open_tree(path)


def load(data: TaskData, split_mode: str, *, eval_sky: str = "fixed", seed: int = 0,
         **options: Any) -> dict[str, Dataset | None]:
    """search: train images 90/10 (positional) into train/val, test images; retrain: all train images / test.

    `eval_sky` sets the sky augmentation of val/test: "fixed" (default; seeded per item by `seed`),
    "random" (the original's per-access draw) or "off". Training always draws at random.
    """
    if options:
        raise InputError(f"cosmic takes only the `eval_sky` and `seed` options, got {sorted(options)}")
    if eval_sky not in EVAL_SKY:
        raise InputError(f"eval_sky must be one of {', '.join(EVAL_SKY)}, got {eval_sky!r}")
    missing = [TARS[p] for p in ("train", "test") if not data.has(TARS[p]) and data.find_dir(f"npy_{p}") is None]
    if missing:
        raise data.missing(missing, hint="or the extracted npy_train/ and npy_test/ folders")
    trees = {part: open_part(data, part) for part in ("train", "test")}
    members = {part: image_members(tree, part) for part, tree in trees.items()}
    for part, found in members.items():
        if not found:
            raise data.corrupt(TARS[part], f"no {FILTER} GAL images under npy_{part}/")
    test = CosmicDataset(trees["test"], members["test"], sky=eval_sky, seed=seed, stream=2)
    train_members = members["train"]
    if split_mode == "retrain":
        return {"train": CosmicDataset(trees["train"], train_members, sky="random"), "val": None, "test": test}
    n = len(train_members)
    # PairedDatasetImagePath: part 'train' is [:max(1, n_train)], its part 'test' (our val) [min(n - 1, n_train):]
    n_train = int(n * (1 - F_VAL))
    val_members = train_members[min(n - 1, n_train):]
    return {"train": CosmicDataset(trees["train"], train_members[:max(1, n_train)], sky="random"),
            "val": CosmicDataset(trees["train"], val_members, sky=eval_sky, seed=seed, stream=1),
            "test": test}
