"""Darcy Flow: the FNO piececonst .mat files (fields coeff, sol) -> normalized coeff + (x, y) grid, 85x85.

Reads the released `piececonst_r421_N1024_smooth{1,2}.mat` (MATLAB v5 via scipy, v7.3/HDF5 via h5py),
or, when both are absent, the stand-in written by `nb360 data generate darcyflow`
(`darcyflow_generated_{train,test}.mat`, checked against its provenance record first).

As the original: the pointwise Gaussian normalizers are fit on the training samples only; x is
encoded for every split, y for train only (val/test targets stay raw, and predictions are decoded
with `dataset.y_normalizer` before the loss/metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError, InputError
from ._common import TaskData
from .darcy_generator import PROVENANCE_FILE, TEST_FILE, TRAIN_FILE, verify_generated

RELEASED_TRAIN = "piececonst_r421_N1024_smooth1.mat"
RELEASED_TEST = "piececonst_r421_N1024_smooth2.mat"
FULL_GRID, FULL_SUB = 421, 5  # the released grid and the benchmark's subsampling (85 x 85)
N_POOL, N_TRAIN, N_TEST = 1000, 900, 100  # smooth1[:1000] -> 900 train / 100 val; smooth2[:100] test
EPS = 1e-5


class UnitGaussianNormalizer:
    """Pointwise Gaussian normalizer (FNO's UnitGaussianNormalizer): per-grid-point mean and unbiased std."""

    def __init__(self, x: np.ndarray, eps: float = EPS) -> None:
        if len(x) < 2:
            raise InputError("the normalizer needs at least 2 training samples (unbiased std)")
        x64 = np.asarray(x, dtype=np.float64)
        self.mean = torch.from_numpy(x64.mean(axis=0).astype(np.float32))
        self.std = torch.from_numpy(x64.std(axis=0, ddof=1).astype(np.float32))  # torch.std is unbiased
        self.eps = eps

    def encode(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(x - mean) / (std + eps)."""
        x = torch.as_tensor(x)
        return (x - self.mean.to(x.device)) / (self.std.to(x.device) + self.eps)

    def decode(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """x * (std + eps) + mean, on x's device (predictions of shape (..., H, W))."""
        x = torch.as_tensor(x)
        return x * (self.std.to(x.device) + self.eps) + self.mean.to(x.device)


def make_grid(size: int) -> np.ndarray:
    """The (2, size, size) grid: channel 0 is x (varies along columns), channel 1 is y (along rows), in [0, 1]."""
    axis = np.linspace(0, 1, size)
    gx, gy = np.meshgrid(axis, axis)  # as create_grid: np.meshgrid(*[linspace] * 2), 'xy' indexing
    return np.stack([gx, gy]).astype(np.float32)


class DarcyDataset(Dataset):
    """Items (x float32[3, s, s] = [encoded coeff, grid x, grid y], y float32[s, s])."""

    def __init__(self, coeff: torch.Tensor, sol: torch.Tensor, grid: torch.Tensor, *, targets_normalized: bool,
                 x_normalizer: UnitGaussianNormalizer, y_normalizer: UnitGaussianNormalizer, source: str,
                 provenance: dict | None) -> None:
        self.coeff = coeff
        self.sol = sol
        self.grid = grid
        self.targets_normalized = targets_normalized
        self.x_normalizer = x_normalizer
        self.y_normalizer = y_normalizer
        self.source = source  # "released" or "generated"
        self.provenance = provenance

    def __len__(self) -> int:
        return len(self.sol)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([self.coeff[index].unsqueeze(0), self.grid]), self.sol[index]


@dataclass(frozen=True)
class _Fields:
    coeff: np.ndarray  # (n, s, s) float32, already subsampled
    sol: np.ndarray
    grid_size: int  # resolution stored in the file
    available: int  # samples in the file


def read_fields(path: Path, rows: int, data: TaskData, *, sub: int | None = None) -> _Fields:
    """The first `rows` samples of coeff and sol, subsampled (421 -> every 5th point; other sizes as stored)."""
    import h5py

    try:
        if h5py.is_hdf5(path):  # MATLAB v7.3
            with h5py.File(path, "r") as handle:
                return _read_hdf5(handle, path, rows, data, sub)
        return _read_v5(path, rows, data, sub)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, DataError):
            raise
        raise data.corrupt(path.name, f"{type(exc).__name__}: {exc}") from exc


def _subsampling(grid_size: int, sub: int | None) -> tuple[int, int]:
    step = sub if sub is not None else (FULL_SUB if grid_size == FULL_GRID else 1)
    return step, (grid_size - 1) // step + 1


def _read_hdf5(handle: Any, path: Path, rows: int, data: TaskData, sub: int | None) -> _Fields:
    out = {}
    for field in ("coeff", "sol"):
        if field not in handle:
            raise data.corrupt(path.name, f"it has no field {field!r} (fields: {', '.join(handle.keys())})")
        ds = handle[field]
        # MATLAB is column-major: an (N, R, R) array is stored as (R, R, N); MatReader reverses all axes.
        if ds.ndim != 3 or ds.shape[0] != ds.shape[1]:
            raise data.corrupt(path.name, f"{field} has shape {ds.shape[::-1]} (MATLAB order); expected (N, R, R)")
        grid, available = ds.shape[0], ds.shape[2]
        if available < rows:
            raise data.corrupt(path.name, f"{field} has {available} samples, fewer than the {rows} needed")
        step, s = _subsampling(grid, sub)
        block = ds[::step, ::step, :rows]  # hyperslab read: only the kept points of the first `rows` samples
        out[field] = np.ascontiguousarray(np.transpose(block, (2, 1, 0))[:, :s, :s], dtype=np.float32)
    return _Fields(out["coeff"], out["sol"], grid, available)


def _read_v5(path: Path, rows: int, data: TaskData, sub: int | None) -> _Fields:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    out, grid, available = {}, 0, 0
    for field in ("coeff", "sol"):  # one field at a time keeps the peak at one 1.4 GB array
        try:
            mat = loadmat(path, variable_names=[field])
        except (MatReadError, NotImplementedError) as exc:
            raise data.corrupt(path.name, f"not a readable MATLAB file: {exc}") from exc
        if field not in mat:
            raise data.corrupt(path.name, f"it has no field {field!r}")
        array = mat.pop(field)
        if array.ndim != 3 or array.shape[1] != array.shape[2]:
            raise data.corrupt(path.name, f"{field} has shape {array.shape}; expected (N, R, R)")
        grid, available = array.shape[1], array.shape[0]
        if available < rows:
            raise data.corrupt(path.name, f"{field} has {available} samples, fewer than the {rows} needed")
        step, s = _subsampling(grid, sub)
        out[field] = np.ascontiguousarray(array[:rows, ::step, ::step][:, :s, :s], dtype=np.float32)
        del array, mat
    if not (np.all(np.isfinite(out["coeff"])) and np.all(np.isfinite(out["sol"]))):
        raise data.corrupt(path.name, "coeff or sol holds NaN or infinite values")
    return _Fields(out["coeff"], out["sol"], grid, available)


def _file_count(path: Path, data: TaskData) -> int:
    """Number of samples in a .mat file without reading its data."""
    import h5py
    from scipy.io import whosmat

    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as handle:
                return int(handle["sol"].shape[-1])
        shapes = {name: shape for name, shape, _ in whosmat(path)}
        return int(shapes["sol"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError, NotImplementedError) as exc:
        raise data.corrupt(path.name, f"cannot read the field sol ({type(exc).__name__}: {exc})") from exc


def generated_split(n_available: int) -> tuple[int, int]:
    """(n_train, n_val) for a generated set: the benchmark's 900/100 with 1000+ samples, else a 90/10 split."""
    pool = min(N_POOL, n_available)
    if pool >= N_POOL:
        return N_TRAIN, N_POOL - N_TRAIN
    n_val = max(1, int(round(0.1 * pool)))
    if pool - n_val < 2:
        raise InputError(f"a Darcy Flow stand-in needs at least 3 samples (2 to fit the normalizers, 1 for val), "
                         f"this one has {n_available}")
    return pool - n_val, n_val


NEUROP_TRAIN, NEUROP_TEST, NEUROP_RECORD = ("darcyflow_neuralop_train_16.mat", "darcyflow_neuralop_test_16.mat",
                                            "darcyflow_neuralop.json")
SOURCES = ("auto", "released", "generated", "neuralop")


def _generated(data: TaskData) -> tuple[Path, Path, str, dict | None] | None:
    if not (data.has(TRAIN_FILE) and data.has(TEST_FILE)):
        return None
    directory = data.path(TRAIN_FILE).parent
    if not (directory / PROVENANCE_FILE).exists():
        raise DataError(f"darcyflow: generated files in {directory} have no {PROVENANCE_FILE} (an interrupted "
                        f"generation leaves none); regenerate with `nb360 data generate darcyflow --root {directory}`")
    return directory / TRAIN_FILE, directory / TEST_FILE, "generated", verify_generated(directory)


def _neuralop(data: TaskData) -> tuple[Path, Path, str, dict | None] | None:
    import json

    if not (data.has(NEUROP_TRAIN) and data.has(NEUROP_TEST) and data.has(NEUROP_RECORD)):
        return None
    try:
        record = json.loads(data.path(NEUROP_RECORD).read_text())
    except ValueError as exc:
        raise data.corrupt(NEUROP_RECORD, f"not JSON ({exc})") from exc
    return data.path(NEUROP_TRAIN), data.path(NEUROP_TEST), "neuralop", record


def _locate(data: TaskData, source: str) -> tuple[Path, Path, str, dict | None]:
    """(train file, test file, source, provenance) by preference: released, generated, neuralop import."""
    has_train, has_test = data.has(RELEASED_TRAIN), data.has(RELEASED_TEST)
    if source in ("auto", "released") and has_train and has_test:
        return data.path(RELEASED_TRAIN), data.path(RELEASED_TEST), "released", None
    # A half-present release is an error in "auto" mode, never silently replaced by a stand-in.
    fallbacks = ("generated", "neuralop") if (source == "auto" and not (has_train or has_test)) else (
        (source,) if source in ("generated", "neuralop") else ())
    for name in fallbacks:
        found = _generated(data) if name == "generated" else _neuralop(data)
        if found:
            return found
    if source == "generated":
        raise data.missing([TRAIN_FILE, TEST_FILE], command=f"`nb360 data generate darcyflow --root {data.dir}`")
    if source == "neuralop":
        raise data.missing([NEUROP_TRAIN, NEUROP_TEST, NEUROP_RECORD],
                           command=f"`nb360 data import-neuralop --root {data.dir}`")
    missing = [name for name, present in ((RELEASED_TRAIN, has_train), (RELEASED_TEST, has_test)) if not present]
    hint = "" if (has_train or has_test) else (f"or generate a stand-in ({TRAIN_FILE}, {TEST_FILE}) with "
                                               f"`nb360 data generate darcyflow --root {data.dir}`")
    raise data.missing(missing, hint=hint)


def load(data: TaskData, split_mode: str, *, sub: int | None = None, source: str = "auto",
         **options: Any) -> dict[str, Dataset | None]:
    """search: 900 train / 100 val from smooth1, 100 test from smooth2; retrain: 1000 train / 100 test.

    `source`: "auto" (default) reads the released files, else the generated stand-in
    (`nb360 data generate darcyflow`), else the neuraloperator import (`nb360 data import-neuralop`,
    16x16 train_16/test_16); or name one of "released", "generated", "neuralop". Non-released sets
    take the first min(1000, N) samples, 900/100 with 1000+ of them, else the last 10% as val.
    `sub` overrides the subsampling step (default: 5 for the 421 grid, 1 for any other grid size).
    Each returned dataset has `x_normalizer`, `y_normalizer`, `targets_normalized`, `source`, `provenance`.
    """
    if options:
        raise InputError(f"darcyflow takes only the `sub` and `source` options, got {sorted(options)}")
    if sub is not None and (not isinstance(sub, int) or sub < 1):
        raise InputError(f"sub must be a positive integer, got {sub!r}")
    if source not in SOURCES:
        raise InputError(f"unknown Darcy Flow source {source!r}; use one of {', '.join(SOURCES)}")
    train_path, test_path, source, record = _locate(data, source)

    if source == "released":
        n_train, n_val = (N_POOL, 0) if split_mode == "retrain" else (N_TRAIN, N_POOL - N_TRAIN)
        n_test = N_TEST
    else:
        n_train, n_val = generated_split(_file_count(train_path, data))
        if split_mode == "retrain":
            n_train, n_val = n_train + n_val, 0
        n_test = min(N_TEST, _file_count(test_path, data))

    pool = read_fields(train_path, n_train + n_val, data, sub=sub)
    test = read_fields(test_path, n_test, data, sub=sub)
    if pool.coeff.shape[1:] != test.coeff.shape[1:]:
        raise data.corrupt(test_path.name, f"grid {test.coeff.shape[1:]} differs from the train file's "
                           f"{pool.coeff.shape[1:]}")

    x_norm = UnitGaussianNormalizer(pool.coeff[:n_train])
    y_norm = UnitGaussianNormalizer(pool.sol[:n_train])
    grid = torch.from_numpy(make_grid(pool.coeff.shape[1]))

    def dataset(coeff: np.ndarray, sol: np.ndarray, normalize_targets: bool) -> DarcyDataset:
        target = y_norm.encode(torch.from_numpy(sol)) if normalize_targets else torch.from_numpy(sol)
        return DarcyDataset(x_norm.encode(torch.from_numpy(coeff)), target, grid, targets_normalized=normalize_targets,
                            x_normalizer=x_norm, y_normalizer=y_norm, source=source, provenance=record)

    splits: dict[str, Dataset | None] = {
        "train": dataset(pool.coeff[:n_train], pool.sol[:n_train], True),
        "test": dataset(test.coeff, test.sol, False),
    }
    splits["val"] = dataset(pool.coeff[n_train:], pool.sol[n_train:], False) if n_val else None
    return splits
