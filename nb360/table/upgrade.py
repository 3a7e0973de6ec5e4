"""`nb360 table upgrade`: rewrite a table of header version 1 with the checksums of version 2.

Version-1 tables carry a sha256 per dataset but no checksum of the index or of the chunks a lookup
reads, so nb360 refuses them by default. Upgrading reads the table with h5py, checks every dataset
against the sha256 recorded at its creation (so nothing corrupt gets a valid checksum), writes the
same content with the writer of this nb360 (which adds the checksums), and checks that every
rewritten dataset has the original sha256 again.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import DataError
from .checksums import HEADER_MAGIC, HEADER_VERSION
from .schema import ARCHS_DATASET, INDEX_DATASET, RUN_DATASETS, validate_index
from .writer import RunData, write_table


def header_version(path: Path) -> int:
    """The nb360 header version of a table file (DataError when it has no nb360 header)."""
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:8] != HEADER_MAGIC:
        raise DataError(f"{path} is not an nb360 table (no nb360 header)")
    return struct.unpack_from("<I", head, 8)[0]


def _checked(group: Any, name: str, expected: str | None, where: str) -> np.ndarray:
    data = group[name][...]
    if not expected:
        raise DataError(f"{where}/{name} records no sha256, so its content cannot be checked before it gets a "
                        "checksum: re-create the table (`nb360 table import` or `nb360 table build`)")
    digest = hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()
    if digest != expected:
        raise DataError(f"{where}/{name} is corrupt (sha256 {digest[:12]}… != recorded {expected[:12]}…): "
                        "download or re-create the table instead of upgrading it")
    return data


def _run_data(f: Any, entry: dict[str, Any]) -> RunData:
    where = entry.get("group") or f"/runs/{entry['task']}/hp{entry['hp']}/seed{entry['seed']}"
    group = f[where]
    arrays = {name: _checked(group, name, entry.get("sha256", {}).get(name), where) for name in RUN_DATASETS}
    rows = arrays["arch_rows"].astype(np.int64)
    mapped = np.flatnonzero(rows >= 0)
    arch_ids = np.full(arrays["curves"].shape[0], np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(arch_ids, rows[mapped], mapped)  # the arch trained for each row (its class's smallest index)
    return RunData(task=entry["task"], hp=str(entry["hp"]), seed=int(entry["seed"]), metrics=list(entry["metrics"]),
                   scalars=list(entry["scalars"]), arch_ids=arch_ids, curves=arrays["curves"],
                   curves_present=arrays["curves_present"].astype(bool), scalar_values=arrays["scalars"],
                   scalars_present=arrays["scalars_present"].astype(bool), valid_split=entry.get("valid_split"),
                   time_kind=entry.get("time_kind", "measured"), protocol=entry.get("protocol", {}),
                   row_sharing=entry.get("row_sharing", "none"), eval_names=entry.get("eval_names"))


def upgrade_table(path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Rewrite `path` (header version 1) with checksums into `out` (default: in place, atomically); return it."""
    import h5py

    path = Path(path)
    out = Path(out) if out is not None else path
    version = header_version(path)
    if version >= HEADER_VERSION:
        raise DataError(f"{path} already has checksums (header version {version}); nothing to upgrade")
    try:
        with h5py.File(path, "r") as f:
            index = json.loads(bytes(f[INDEX_DATASET][...]))
            validate_index(index)
            archs = [a.decode() for a in f[ARCHS_DATASET][...]]
            runs = [_run_data(f, entry) for entry in index["runs"]]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{path} cannot be read for the upgrade ({type(exc).__name__}: {exc}); download or re-create "
                        "the table") from None
    provenance = dict(index.get("provenance") or {})
    provenance["upgraded"] = (f"{index.get('created')} table of nb360 {index.get('nb360_version')} (header version "
                              f"{version}) rewritten with checksums by nb360 {__version__} nb360 table upgrade")
    written = write_table(out, runs, archs=archs, space=index["space"], provenance=provenance,
                          created=index.get("created"), source_layout=index.get("source_layout"))
    # The rewrite must hold the very bytes that were checked: compare the new index's sha256s.
    with h5py.File(written, "r") as f:
        new = {(r["task"], str(r["hp"]), int(r["seed"])): r["sha256"]
               for r in json.loads(bytes(f[INDEX_DATASET][...]))["runs"]}
    for entry in index["runs"]:
        if new.get((entry["task"], str(entry["hp"]), int(entry["seed"]))) != entry["sha256"]:
            raise DataError(f"upgrading {path} changed the data of run {entry['task']} hp {entry['hp']} seed "
                            f"{entry['seed']} ({written} is not a faithful copy): report this")
    return written
