"""FSD50K: audio.zip (1-s 22,050 Hz chunk wavs + manifests) -> log-mel chunks (1, 96, 101), 200 multi-hot labels.

Reads the zip member by member, or its extracted folder (data/chunks/... in the task directory).
Train items are one random chunk of a clip with the training transforms and background-noise
mixing; val/test items are every chunk of a clip (the metric averages the chunk logits).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ._archive import Archive, DirectoryArchive, open_tree
from ._common import TaskData
from .audio import FRAMES, eval_transform, log_mel, read_wav, train_transform
from .collate import collate_clips

ZIP = "audio.zip"
MANIFESTS = {"train": "tr.csv", "val": "val.csv", "test": "eval.csv"}
LABEL_MAP = "lbl_map.json"
NOISE_DIR = "data/noise_22050"
NUM_CLASSES = 200
MIX_PROB, MIX_ALPHA_MAX = 0.75, 0.5  # UseMixerWithProb(BackgroundAddMixer(uniform), 0.75)


class AudioTree:
    """audio.zip's layout: data/chunks/{tr,val,eval}.csv, lbl_map.json, chunk wavs, data/noise_22050/*.wav."""

    def __init__(self, archive: Archive, data: TaskData) -> None:
        self.archive = archive
        self.data = data
        found = archive.find("data/chunks/" + LABEL_MAP) or archive.find("chunks/" + LABEL_MAP)
        if found is None:
            raise data.corrupt(archive.label, f"no chunks/{LABEL_MAP} inside")
        self.chunks_dir = found[: -len(LABEL_MAP)]  # ".../data/chunks/"
        self.top = found[: -len("data/chunks/" + LABEL_MAP)] if found.endswith("data/chunks/" + LABEL_MAP) else ""

    def label_map(self) -> dict[str, int]:
        """Label name -> index (lbl_map.json)."""
        try:
            mapping = json.loads(self.archive.read(self.chunks_dir + LABEL_MAP))
        except (KeyError, ValueError) as exc:
            raise self.data.corrupt(self.chunks_dir + LABEL_MAP, f"{type(exc).__name__}: {exc}") from exc
        if len(mapping) != NUM_CLASSES or sorted(mapping.values()) != list(range(NUM_CLASSES)):
            raise self.data.corrupt(LABEL_MAP, f"expected {NUM_CLASSES} labels indexed 0..{NUM_CLASSES - 1}")
        return mapping

    def manifest(self, split: str) -> list[dict[str, str]]:
        """Rows (files, labels, ext) of a split's manifest."""
        name = self.chunks_dir + MANIFESTS[split]
        try:
            text = self.archive.read(name).decode()
        except KeyError:
            raise self.data.corrupt(self.archive.label, f"no {name} inside") from None
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows or not {"files", "labels", "ext"} <= set(rows[0]):
            raise self.data.corrupt(name, "expected a non-empty CSV with columns files, labels, ext")
        return rows

    def resolve(self, path: str) -> str:
        """The member holding manifest path `path` (as written, relative to the top, or from its data/ part on)."""
        posix = PurePosixPath(path.replace("\\", "/"))
        candidates = [str(posix).lstrip("/")]
        parts = posix.parts
        candidates += ["/".join(parts[i:]) for i, part in enumerate(parts) if part == "data"]
        for candidate in candidates:
            for name in (self.top + candidate, candidate):
                if self.archive.exists(name):
                    return name
        raise self.data.corrupt(self.archive.label, f"the chunk {path} named in a manifest is not inside")

    def signal(self, member: str) -> np.ndarray:
        """The (tiled to >= 1 s) mono signal of a chunk wav."""
        try:
            return read_wav(self.archive.read(member), name=member)
        except ValueError as exc:
            raise self.data.corrupt(member, str(exc)) from exc

    def noise_members(self) -> list[str]:
        """Background-noise wavs under data/noise_22050/."""
        return [n for n in self.archive.list(self.top + NOISE_DIR) if n.endswith(".wav")]


class _Clips:
    """Manifest rows grouped by clip (the `ext` column), in sorted clip order (np.unique)."""

    def __init__(self, tree: AudioTree, split: str, label_map: dict[str, int]) -> None:
        rows = tree.manifest(split)
        self.files = [row["files"] for row in rows]
        exts = np.array([row["ext"] for row in rows])
        self.clips, inverse = np.unique(exts, return_inverse=True)
        order = np.argsort(inverse, kind="stable")  # rows grouped by clip, manifest order within a clip
        self.rows_of = np.split(order, np.cumsum(np.bincount(inverse, minlength=len(self.clips)))[:-1])
        self.targets = np.zeros((len(rows), NUM_CLASSES), dtype=np.float32)
        for i, row in enumerate(rows):
            for label in row["labels"].split(","):
                if label not in label_map:
                    raise tree.data.corrupt(MANIFESTS[split], f"row {i + 2} has label {label!r}, not in {LABEL_MAP}")
                self.targets[i, label_map[label]] = 1.0
        tree.resolve(self.files[0])  # fail early when the manifest paths do not match the archive


class Fsd50kTrain(Dataset):
    """Items (x float32[1, 96, 101], y float32[200]): a random chunk of clip `index`, augmented.

    With `noise_mixing`, probability 0.75: x = (1 - a) x + a noise, a ~ U(0, 0.5), noise the
    transformed feature of a random background file (computed once per file, then cached).
    """

    def __init__(self, tree: AudioTree, clips: _Clips, *, augment: bool = True, noise_mixing: bool = True) -> None:
        self.tree = tree
        self.clips = clips
        self.augment = augment
        self.noise = tree.noise_members() if (augment and noise_mixing) else []
        self._noise_features: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.clips.clips)

    def _feature(self, row: int) -> np.ndarray:
        spec = log_mel(self.tree.signal(self.tree.resolve(self.clips.files[row])))
        return train_transform(spec) if self.augment else eval_transform(spec)[:, :FRAMES]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.clips.rows_of[index]
        row = int(rows[int(torch.randint(0, len(rows), ()))])
        x = self._feature(row)
        if self.noise and float(torch.rand(())) < MIX_PROB:
            member = self.noise[int(torch.randint(0, len(self.noise), ()))]
            if member not in self._noise_features:
                self._noise_features[member] = log_mel(self.tree.signal(member))
            noise = train_transform(self._noise_features[member])
            alpha = float(torch.empty(()).uniform_(0.0, MIX_ALPHA_MAX))
            x = (1 - alpha) * x + alpha * noise
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)[None]), torch.from_numpy(
            self.clips.targets[row].copy())


class Fsd50kEval(Dataset):
    """Items (x float32[n_chunks, 1, 96, 101], y float32[200]): every chunk of clip `index`, padded, no augmentation.

    Clips have different chunk counts: loaders batch them with `collate` (`nb360.data.collate`), which
    keeps the clip boundaries, so any batch size evaluates like the original's one clip per batch.
    """

    collate = staticmethod(collate_clips)

    def __init__(self, tree: AudioTree, clips: _Clips) -> None:
        self.tree = tree
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.clips.rows_of[index]
        chunks = [eval_transform(log_mel(self.tree.signal(self.tree.resolve(self.clips.files[r])))) for r in rows]
        widths = {c.shape[1] for c in chunks}
        if len(widths) != 1:
            raise self.tree.data.corrupt(str(self.clips.clips[index]), f"its chunks have different lengths {widths}")
        x = np.stack(chunks)[:, None].astype(np.float32)
        return torch.from_numpy(x), torch.from_numpy(self.clips.targets[rows[0]].copy())


def open_audio_tree(data: TaskData) -> AudioTree:
    """The extracted folder (data/chunks/lbl_map.json under the task directory) when present, else audio.zip."""
    top = data.find_dir(f"data/chunks/{LABEL_MAP}")
    if top is not None:
        return AudioTree(DirectoryArchive(top), data)
    (path,) = data.require(ZIP, hint="or its extracted data/ folder")
    return AudioTree(open_tree(path), data)


def load(data: TaskData, split_mode: str, *, augment: bool = True, noise_mixing: bool = True,
         **options: Any) -> dict[str, Dataset | None]:
    """search: tr / val / eval manifests; retrain: tr only (as the original, see the card) / eval.

    `augment=False` gives the training clips the eval transform; `noise_mixing=False` turns off the
    background-noise mixing.
    """
    if options:
        raise InputError(f"fsd50k takes only the `augment` and `noise_mixing` options, got {sorted(options)}")
    tree = open_audio_tree(data)
    labels = tree.label_map()
    merge_val = bool(data.card.splits["retrain"]["merge_val"])
    train = Fsd50kTrain(tree, _Clips(tree, "train", labels), augment=augment, noise_mixing=noise_mixing)
    test = Fsd50kEval(tree, _Clips(tree, "test", labels))
    if split_mode == "retrain":
        if merge_val:  # the card decides; the original does not merge (see fsd50k.toml)
            val_train = Fsd50kTrain(tree, _Clips(tree, "val", labels), augment=augment, noise_mixing=noise_mixing)
            return {"train": torch.utils.data.ConcatDataset([train, val_train]), "val": None, "test": test}
        return {"train": train, "val": None, "test": test}
    return {"train": train, "val": Fsd50kEval(tree, _Clips(tree, "val", labels)), "test": test}
