"""PSICOV: protein.zip (DeepCov/PSICOV feature pickles and C-beta distance maps) -> 57-channel pair features.

Reads the zip member by member (or its extracted folder). Train/val items are random 128x128
windows of the padded maps with distances clipped at 16; test items are the full padded maps on a
512x512 canvas, unclipped, as PDNET's data generator in the original.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ._archive import Archive, open_tree
from ._common import TaskData, read_npy, safe_pickle_load

ZIP = "protein.zip"
CHANNELS = 57
WINDOW, TEST_WINDOW, PAD = 128, 512, 10  # training window, LMAX, pad_size
LABEL_CLIP = 16.0  # label_engineering '16.0'
N_VAL = 100
FEATURE_DIRS = ("deepcov/features", "psicov/features", "cameo/features")
DISTANCE_DIRS = ("deepcov/distance", "psicov/distance", "cameo/distance")


def pair_features(features: dict, name: str) -> np.ndarray:
    """The (L, L, 57) input of one protein, channel by channel as PDNET's get_feature."""
    seq = features["seq"]
    length = len(seq)
    ss = np.asarray(features["ss"], dtype=np.float64)
    pssm = np.asarray(features["pssm"], dtype=np.float64)
    sa = np.asarray(features["sa"], dtype=np.float64)
    entropy = np.asarray(features["entropy"], dtype=np.float64)
    pair = [np.asarray(features[k], dtype=np.float64) for k in ("ccmpred", "freecon", "potential")]
    expected = {"ss": (3, length), "pssm": (length, 22), "sa": (length,), "entropy": (length,)}
    for key, value in (("ss", ss), ("pssm", pssm), ("sa", sa), ("entropy", entropy)):
        if value.shape != expected[key]:
            raise ValueError(f"{name}: {key} has shape {value.shape}, expected {expected[key]}")
    for key, value in zip(("ccmpred", "freecon", "potential"), pair, strict=True):
        if value.shape != (length, length):
            raise ValueError(f"{name}: {key} has shape {value.shape}, expected {(length, length)}")
    channels = []
    # Each per-residue profile v gives two channels: v along columns (row-broadcast), then its transpose.
    profiles = [ss[j] for j in range(3)] + [pssm[:, j] for j in range(22)] + [sa, entropy]
    for profile in profiles:
        tiled = np.broadcast_to(profile[None, :], (length, length))
        channels += [tiled, tiled.T]
    channels += pair
    x = np.stack(channels, axis=-1)
    assert x.shape[-1] == CHANNELS
    if not (x.max(initial=0) < 100.0 and x.min(initial=0) > -100.0):
        raise ValueError(f"{name}: feature values outside (-100, 100)")
    return x


def distance_map(ly: int, cb_map: np.ndarray, name: str) -> np.ndarray:
    """PDNET's get_map clean-up: distances < 1 set to 1, the diagonal filled from its neighbours."""
    y = np.array(cb_map, dtype=np.float64)
    if y.shape != (ly, ly) or ly < 2:
        raise ValueError(f"{name}: distance map has shape {y.shape} for length {ly}")
    with np.errstate(invalid="ignore"):
        y[y < 1.0] = 1.0
    y[0, 0] = y[0, 1]
    y[ly - 1, ly - 1] = y[ly - 1, ly - 2]
    for q in range(1, ly - 1):
        if np.isnan(y[q, q]):
            continue
        left, right = y[q, q - 1], y[q, q + 1]
        if np.isnan(left) and np.isnan(right):
            y[q, q] = 1.0
        elif np.isnan(left):
            y[q, q] = right
        elif np.isnan(right):
            y[q, q] = left
        else:
            y[q, q] = (left + right) / 2.0
    return y


class ProteinTree:
    """The unpacked layout of protein.zip, wherever its top sits inside the archive or folder."""

    def __init__(self, archive: Archive, data: TaskData) -> None:
        self.archive = archive
        self.data = data
        found = archive.find("deepcov.lst")
        if found is None:
            raise data.corrupt(archive.label, "no deepcov.lst inside")
        self.prefix = found[: -len("deepcov.lst")]

    def read_list(self, name: str) -> list[str]:
        """A protein list (first word of each non-empty line), as load_list."""
        try:
            text = self.archive.read(self.prefix + name).decode()
        except KeyError:
            raise self.data.corrupt(self.archive.label, f"no {name} inside") from None
        return [line.split()[0] for line in text.splitlines() if line.strip()]

    def _member(self, dirs: tuple[str, ...], filename: str) -> str | None:
        # The original loops over deepcov, psicov, cameo and keeps the LAST directory holding the file.
        for directory in reversed(dirs):
            name = f"{self.prefix}{directory}/{filename}"
            if self.archive.exists(name):
                return name
        return None

    def features(self, pdb: str) -> np.ndarray:
        """The (L, L, 57) features of `pdb`."""
        member = self._member(FEATURE_DIRS, f"{pdb}.pkl")
        if member is None:
            raise self.data.corrupt(self.archive.label, f"no feature file {pdb}.pkl in {', '.join(FEATURE_DIRS)}")
        try:
            payload = safe_pickle_load(io.BytesIO(self.archive.read(member)), encoding="latin1")
            return pair_features(payload, member)
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
            raise self.data.corrupt(member, f"{type(exc).__name__}: {exc}") from exc

    def distances(self, pdb: str) -> tuple[int, np.ndarray]:
        """(length, cleaned C-beta distance map) of `pdb`."""
        member = self._member(DISTANCE_DIRS, f"{pdb}-cb.npy")
        if member is None:
            raise self.data.corrupt(self.archive.label, f"no distance file {pdb}-cb.npy in {', '.join(DISTANCE_DIRS)}")
        try:
            record = read_npy(io.BytesIO(self.archive.read(member)), what=member)
            ly, _, cb_map = record
            return int(ly), distance_map(int(ly), cb_map, member)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise self.data.corrupt(member, f"{type(exc).__name__}: {exc}") from exc


class PsicovDataset(Dataset):
    """Items (x float32[57, W, W], y float32[1, W, W]) for proteins `pdb_ids`.

    window=128 with `clip` 16.0: a random W x W window of the padded map (the map placed at the
    top-left of the canvas when it fits); window=512 with clip None: the full test canvas.
    """

    def __init__(self, tree: ProteinTree, pdb_ids: list[str], *, window: int, clip: float | None) -> None:
        self.tree = tree
        self.pdb_ids = list(pdb_ids)
        self.window = window
        self.clip = clip
        self._lengths: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.pdb_ids)

    @property
    def lengths(self) -> dict[str, int]:
        """Sequence length of every protein (the metric's length_dict); read on first use."""
        for pdb in self.pdb_ids:
            if pdb not in self._lengths:
                self._lengths[pdb] = self.tree.distances(pdb)[0]
        return dict(self._lengths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pdb = self.pdb_ids[index]
        x = self.tree.features(pdb)
        ly, y0 = self.tree.distances(pdb)
        self._lengths[pdb] = ly
        length = x.shape[0]
        if ly > length:
            raise self.tree.data.corrupt(pdb, f"distance map length {ly} exceeds the feature length {length}")
        y = np.full((length, length), np.nan)
        y[:ly, :ly] = y0
        half = PAD // 2
        size = length + PAD
        x_pad = np.zeros((size, size, CHANNELS), dtype=np.float32)
        x_pad[half:half + length, half:half + length] = x
        y_pad = np.full((size, size), 100.0, dtype=np.float32)
        y_pad[half:half + length, half:half + length] = y
        w = self.window
        x_out = np.zeros((w, w, CHANNELS), dtype=np.float32)
        y_out = np.full((w, w), 100.0, dtype=np.float32)
        if size <= w:
            x_out[:size, :size] = x_pad
            y_out[:size, :size] = y_pad
        else:  # a uniform window, both offsets inclusive of size - w (random.randint in the original)
            rx, ry = (int(v) for v in torch.randint(0, size - w + 1, (2,)))
            x_out[:] = x_pad[rx:rx + w, ry:ry + w]
            y_out[:] = y_pad[rx:rx + w, ry:ry + w]
        if self.clip is not None:
            with np.errstate(invalid="ignore"):
                y_out[y_out > self.clip] = self.clip
        x_out = np.nan_to_num(x_out.transpose(2, 0, 1), nan=0.0)
        y_out = np.nan_to_num(y_out[None], nan=0.0)
        return torch.from_numpy(np.ascontiguousarray(x_out)), torch.from_numpy(np.ascontiguousarray(y_out))


def open_protein_tree(data: TaskData) -> ProteinTree:
    """protein.zip's tree: the extracted folder when present (deepcov.lst in the task dir or below), else the zip."""
    folder = data.find_dir("deepcov.lst")
    if folder is not None:
        return ProteinTree(open_tree(folder), data)
    (path,) = data.require(ZIP, hint="or its extracted contents: deepcov.lst, psicov.lst, deepcov/, psicov/")
    return ProteinTree(open_tree(path), data)


def load(data: TaskData, split_mode: str, **options: Any) -> dict[str, Dataset | None]:
    """search: deepcov[100:] train / deepcov[:100] val (128 crops, clip 16) / psicov test (512, raw);
    retrain: all of deepcov / psicov test."""
    if options:
        raise InputError(f"psicov takes no loader options, got {sorted(options)}")
    tree = open_protein_tree(data)
    deepcov = tree.read_list("deepcov.lst")
    psicov = tree.read_list("psicov.lst")
    if len(deepcov) <= N_VAL and split_mode == "search":
        raise data.corrupt(ZIP, f"deepcov.lst lists {len(deepcov)} proteins; the search split needs more than {N_VAL}")
    test = PsicovDataset(tree, psicov, window=TEST_WINDOW, clip=None)
    if split_mode == "retrain":
        return {"train": PsicovDataset(tree, deepcov, window=WINDOW, clip=LABEL_CLIP), "val": None, "test": test}
    return {"train": PsicovDataset(tree, deepcov[N_VAL:], window=WINDOW, clip=LABEL_CLIP),
            "val": PsicovDataset(tree, deepcov[:N_VAL], window=WINDOW, clip=LABEL_CLIP), "test": test}
