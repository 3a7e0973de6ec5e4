"""Writes nb360 tables (schema version 1, header version 2) with h5py: contiguous datasets, JSON index,
user-block header, and the checksums that let the reader refuse corrupt bytes (nb360/table/checksums.py)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import checksums
from .schema import ARCHS_DATASET, INDEX_DATASET, RUN_DATASETS, SCHEMA_VERSION, USER_BLOCK_SIZE, run_group_path


@dataclass
class RunData:
    """Everything recorded for one (task, hp, seed) run group, as dense arrays with presence masks."""

    task: str
    hp: str
    seed: int
    metrics: list[str]  # curve names, "<split>-<quantity>"
    scalars: list[str]  # per-arch scalar names, e.g. params, flops, latency
    arch_ids: np.ndarray  # int (R,) the archs this run records, one per row, distinct
    curves: np.ndarray  # float32 (R, M, E)
    curves_present: np.ndarray  # bool (R, M, E)
    scalar_values: np.ndarray  # float64 (R, S)
    scalars_present: np.ndarray  # bool (R, S)
    valid_split: str | None = None  # eval split used as the search signal (NATS: x-valid, else ori-test)
    time_kind: str = "measured"  # "measured", or "pseudo" for the calibrated times of NATS-Bench files
    protocol: dict[str, Any] = field(default_factory=dict)  # training protocol, with its source
    # "isomorphism": archs that were not trained read the row of their isomorphism class's
    # representative (nb360.space.nb201.canonical) when that one was trained; "none": they are absent.
    row_sharing: str = "none"
    # NATS-Bench's eval_names of the records, in their order (imported tables); None when not known.
    eval_names: list[str] | None = None

    @property
    def epochs(self) -> int:
        """Number of epochs (the last axis of curves)."""
        return int(self.curves.shape[2])

    def validate(self, num_archs: int) -> None:
        """Raise ValueError when shapes, dtypes or names are inconsistent."""
        a, m, e = self.curves.shape
        where = f"run {self.task}/hp{self.hp}/seed{self.seed}"
        ids = np.asarray(self.arch_ids)
        if ids.shape != (a,):
            raise ValueError(f"{where}: {a} curve rows but {ids.shape} arch ids")
        if a and (ids.min() < 0 or ids.max() >= num_archs or len(np.unique(ids)) != a):
            raise ValueError(f"{where}: arch ids must be distinct indices in [0, {num_archs})")
        if m != len(self.metrics) or len(set(self.metrics)) != m:
            raise ValueError(f"{where}: {m} curve rows but metric names {self.metrics}")
        if self.curves_present.shape != self.curves.shape:
            raise ValueError(f"{where}: curves_present shape {self.curves_present.shape} != {self.curves.shape}")
        if self.scalar_values.shape != (a, len(self.scalars)) or self.scalars_present.shape != self.scalar_values.shape:
            raise ValueError(f"{where}: scalars must be ({a}, {len(self.scalars)}) with a matching mask")
        if e < 1:
            raise ValueError(f"{where}: a run needs at least one epoch")


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _write_header(path: Path, index_address: int, index_bytes: bytes) -> None:
    head = checksums.header(SCHEMA_VERSION, index_address, index_bytes)
    with open(path, "r+b") as f:
        f.write(head)
        f.flush()
        os.fsync(f.fileno())


def write_table(path: str | os.PathLike, runs: Sequence[RunData], *, archs: Sequence[str], space: str = "nb201",
                provenance: dict[str, Any] | None = None, created: str | None = None,
                source_layout: dict[str, Any] | None = None) -> Path:
    """Write an nb360 table atomically (temp file, then rename) and return its path.

    `created` keeps an earlier creation time (nb360 table upgrade); by default it is now.
    `source_layout` (imported tables) records how the released file was organised (its format and
    the order of its datasets and fidelities) so the NATS-Bench facade can answer in that order.
    """
    import h5py

    from .. import __version__

    path = Path(path)
    _check_writable(path)
    keys = [(r.task, r.hp, r.seed) for r in runs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate run groups in {keys}")
    for run in runs:
        run.validate(len(archs))
    provenance = dict(provenance or {})
    created = created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    index: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "space": space, "num_archs": len(archs), "nb360_version": __version__,
        "created": created, "provenance": provenance, "checksums": checksums.index_entry(), "runs": [],
    }
    if source_layout is not None:
        index["source_layout"] = source_layout
    try:
        # libver v110: superblock v3 and v2 object headers, the subset csrc/table reads. Large datasets
        # are page-aligned so mapped lookups touch as few pages as possible.
        try:
            handle = h5py.File(tmp, "w", libver=("v110", "v110"), userblock_size=USER_BLOCK_SIZE,
                               alignment_threshold=65536, alignment_interval=4096)
        except OSError as exc:
            from ..errors import DataError

            raise DataError(f"cannot write the table {path}: creating {tmp.name} there failed ({exc}); choose "
                            "another output path") from None
        with handle as f:
            f.attrs["nb360_schema_version"] = SCHEMA_VERSION
            f.attrs["nb360_version"] = __version__
            f.attrs["created"] = created
            f.attrs["space"] = space
            f.attrs["num_archs"] = len(archs)
            for key, value in provenance.items():
                f.attrs[f"provenance_{key}"] = value if isinstance(value, (str, int, float)) else json.dumps(value)
            if source_layout is not None:
                f.attrs["source_layout"] = json.dumps(source_layout)
            width = max(len(a) for a in archs)
            archs_ds = f.create_dataset(ARCHS_DATASET, data=np.array([a.encode() for a in archs], dtype=f"S{width}"))
            index["archs_dataset"] = h5py.h5o.get_info(archs_ds.id).addr
            for run in runs:
                index["runs"].append(_write_run(f, run, len(archs)))
            index_bytes = json.dumps(index).encode()
            index_ds = f.create_dataset(INDEX_DATASET, data=np.frombuffer(index_bytes, dtype=np.uint8))
            index_address = h5py.h5o.get_info(index_ds.id).addr
        _write_header(tmp, index_address, index_bytes)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _check_writable(path: Path) -> None:
    """DataError naming the fix when the table cannot be written where asked (before any work is done)."""
    from ..errors import DataError

    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise DataError(f"cannot write the table {path}: it is a folder; give a file name such as {path / 'table.h5'}")
    if not folder.is_dir():
        raise DataError(f"cannot write the table {path}: the folder {folder} does not exist; create it or choose "
                        "another output path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"cannot write the table {path}: the folder {folder} is not writable; choose another "
                        "output path")


def _write_run(f: Any, run: RunData, num_archs: int) -> dict[str, Any]:
    import h5py

    group = f.create_group(run_group_path(run.task, run.hp, run.seed))
    order = np.argsort(run.arch_ids, kind="stable")  # rows in arch order: traversals read forward
    curves = np.where(run.curves_present, run.curves, np.nan).astype("<f4")[order]
    scalars = np.where(run.scalars_present, run.scalar_values, np.nan).astype("<f8")[order]
    arch_rows = np.full(num_archs, -1, dtype="<i4")
    arch_rows[np.asarray(run.arch_ids)[order]] = np.arange(len(order), dtype="<i4")
    if run.row_sharing == "isomorphism":
        from ..space import nb201

        canonical = nb201.canonical_array()
        untrained = arch_rows < 0
        arch_rows[untrained] = arch_rows[canonical[untrained]]
    elif run.row_sharing != "none":
        raise ValueError(f"unknown row_sharing {run.row_sharing!r}")
    arrays = {
        "arch_rows": arch_rows,
        "curves": curves,
        "curves_present": run.curves_present.astype(np.uint8)[order],
        "scalars": scalars,
        "scalars_present": run.scalars_present.astype(np.uint8)[order],
    }
    entry: dict[str, Any] = {
        "task": run.task, "hp": run.hp, "seed": int(run.seed), "group": group.name, "epochs": run.epochs,
        "metrics": list(run.metrics), "scalars": list(run.scalars), "valid_split": run.valid_split,
        "time_kind": run.time_kind, "row_sharing": run.row_sharing, "protocol": run.protocol, "datasets": {},
        "sha256": {},
    }
    if run.eval_names is not None:
        entry["eval_names"] = list(run.eval_names)
        group.attrs["eval_names"] = json.dumps(list(run.eval_names))
    for name in RUN_DATASETS:
        ds = group.create_dataset(name, data=arrays[name])  # contiguous, uncompressed: mmap-able
        entry["datasets"][name] = h5py.h5o.get_info(ds.id).addr
        entry["sha256"][name] = _sha256(arrays[name])
    entry["chunk_checksums"] = checksums.write_run_checksums(group, [arrays[name] for name in RUN_DATASETS])
    # The same facts as HDF5 attributes, for h5py / h5dump / pandas users.
    group.attrs["task"] = run.task
    group.attrs["hp"] = run.hp
    group.attrs["seed"] = int(run.seed)
    group.attrs["epochs"] = run.epochs
    group.attrs["archs_recorded"] = len(order)
    group.attrs["metrics"] = np.array([m.encode() for m in run.metrics])
    group.attrs["scalars"] = np.array([s.encode() for s in run.scalars]) if run.scalars else np.array([], dtype="S1")
    group.attrs["valid_split"] = run.valid_split or ""
    group.attrs["time_kind"] = run.time_kind
    group.attrs["row_sharing"] = run.row_sharing
    group.attrs["protocol"] = json.dumps(run.protocol)
    return entry
