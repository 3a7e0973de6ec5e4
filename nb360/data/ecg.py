"""ECG (PhysioNet/CinC 2017): challenge2017.pkl -> z-scored recordings cut into 1000-sample windows.

Windows are cut on access from the recordings kept once in memory (the original materializes
every window, about 1 GB for the train split). Val/test datasets carry `pid`, the recording id of
each window within its split, for the per-recording majority vote of the metric.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ._common import TaskData, load_pickle

FILE = "challenge2017.pkl"
CLASSES = ("N", "A", "O", "~")
WINDOW, STRIDE = 1000, 500
# Class-dependent strides oversample the rare classes (slide_and_cut, datatype 4): N, A, O, ~.
CLASS_STRIDES = (STRIDE, STRIDE // 6, STRIDE // 2, STRIDE // 20)


def read_recordings(data: TaskData) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-recording z-scored signals (float32) and labels 0..3 (N, A, O, ~)."""
    (path,) = data.require(FILE)
    payload = load_pickle(path, data, encoding="latin1")
    try:
        signals, raw_labels = payload["data"], payload["label"]
    except (KeyError, TypeError, IndexError) as exc:
        raise data.corrupt(FILE, f"expected a pickled dict with keys 'data' and 'label' ({exc})") from exc
    if len(signals) != len(raw_labels):
        raise data.corrupt(FILE, f"{len(signals)} recordings but {len(raw_labels)} labels")
    labels = np.empty(len(raw_labels), dtype=np.int64)
    for i, label in enumerate(raw_labels):
        label = label.decode() if isinstance(label, bytes) else str(label)
        if label not in CLASSES:
            raise data.corrupt(FILE, f"recording {i} has label {label!r}; expected one of {', '.join(CLASSES)}")
        labels[i] = CLASSES.index(label)
    recordings, constant = [], 0
    for i, signal in enumerate(signals):
        signal = np.asarray(signal, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(signal)):
            raise data.corrupt(FILE, f"recording {i} has NaN or infinite samples")
        std = signal.std()
        if std == 0:  # the original would divide by zero (NaN windows); nb360 keeps it as zeros
            constant += 1
            std = 1.0
        recordings.append(((signal - signal.mean()) / std).astype(np.float32))
    if constant:
        warnings.warn(f"{FILE}: {constant} constant recording(s) z-scored to zeros instead of NaN", stacklevel=2)
    return recordings, labels


def window_index(recordings: list[np.ndarray], labels: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    """slide_and_cut for recordings `ids` (in order): recording, start, label and pid of every window.

    Starts are range(0, len - WINDOW, stride) with the class's stride, exactly as the original
    (so a recording of at most WINDOW samples gives no window); pid is the position in `ids`.
    """
    rec, start, label, pid = [], [], [], []
    for position, r in enumerate(ids):
        starts = np.arange(0, len(recordings[r]) - WINDOW, CLASS_STRIDES[labels[r]], dtype=np.int64)
        rec.append(np.full(len(starts), r, dtype=np.int64))
        start.append(starts)
        label.append(np.full(len(starts), labels[r], dtype=np.int64))
        pid.append(np.full(len(starts), position, dtype=np.int64))
    empty = np.zeros(0, dtype=np.int64)
    return {k: np.concatenate(v) if v else empty
            for k, v in (("recording", rec), ("start", start), ("label", label), ("pid", pid))}


class EcgWindows(Dataset):
    """Windows (x float32[1, 1000], y int64) cut on access; `pid` and `labels` per window for the vote."""

    def __init__(self, recordings: list[np.ndarray], index: dict[str, np.ndarray], ids: np.ndarray) -> None:
        self.recordings = recordings
        self.recording = index["recording"]
        self.start = index["start"]
        self.labels = index["label"]
        self.pid = index["pid"]
        self.recording_ids = np.asarray(ids)  # pid -> recording number in challenge2017.pkl

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = int(self.start[index])
        window = self.recordings[int(self.recording[index])][start:start + WINDOW]
        return torch.from_numpy(window.copy()).unsqueeze(0), torch.tensor(int(self.labels[index]))


def split_ids(n: int, split_mode: str) -> dict[str, np.ndarray]:
    """Recording ids per split, from sklearn's train_test_split with random_state=0 as the original."""
    from sklearn.model_selection import train_test_split

    ids = np.arange(n)
    if split_mode == "retrain":  # read_data_physionet_4: a different split, not train + val
        train, test = train_test_split(ids, test_size=0.1, random_state=0)
        return {"train": train, "test": test}
    train, held_out = train_test_split(ids, test_size=0.2, random_state=0)
    val, test = train_test_split(held_out, test_size=0.5, random_state=0)
    return {"train": train, "val": val, "test": test}


def load(data: TaskData, split_mode: str, **options: Any) -> dict[str, Dataset | None]:
    """search: recordings 80/10/10 (random_state=0); retrain: a fresh 90/10 split, as the original."""
    if options:
        raise InputError(f"ecg takes no loader options, got {sorted(options)}")
    recordings, labels = read_recordings(data)
    if len(recordings) < 10:
        raise data.corrupt(FILE, f"only {len(recordings)} recordings; the splits need at least 10")
    splits = {name: EcgWindows(recordings, window_index(recordings, labels, ids), ids)
              for name, ids in split_ids(len(recordings), split_mode).items()}
    splits.setdefault("val", None)
    return splits
