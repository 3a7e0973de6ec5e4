"""The table builder: trains NB201 architectures with a protocol and writes an nb360 table.

Work is sharded by architecture; each finished shard is written atomically to a work directory, so
a killed build resumes where it stopped and loses no finished shard; shards run in local worker
processes or as Ray tasks; the merge writes the HDF5 table with the protocol and provenance.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from .executors import EXECUTORS
from .merge import merge
from .shards import Shard, WorkDir
from .spec import BuildSpec

__all__ = ["BuildSpec", "EXECUTORS", "Shard", "WorkDir", "build_table"]


def _started(work: WorkDir) -> str:
    marker = work.path / "started.txt"
    if not marker.exists():
        marker.write_text(_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    return marker.read_text().strip()


def _check_data(spec: BuildSpec) -> dict[str, Any]:
    """Load the data once here, so a missing file fails before any worker starts; return its provenance."""
    from ..data import load
    from ..data.fingerprint import fingerprint

    splits = load(spec.task, spec.data_root, "search", **spec.loader_options)
    if splits.get("val") is None:
        raise InputError(f"{spec.task}: the search split has no validation set to record")
    provenance: dict[str, Any] = {"root": str(Path(spec.data_root).resolve()), "split_mode": "search",
                                  "sizes": {k: len(v) for k, v in splits.items() if v is not None},
                                  "files": fingerprint(spec.task, spec.data_root)}
    source = getattr(splits["train"], "provenance", None)
    if source:
        provenance["source"] = source
    return provenance


def build_table(spec: BuildSpec, out: str | Path, *, work_dir: str | Path | None = None, shard_size: int = 16,
                executor: str = "local", workers: int = 1, ray_address: str | None = None,
                progress: bool = True, merge_with: list[str | Path] | tuple = ()) -> Path:
    """Train every pending shard of the build and merge all finished shards into the table `out`.

    `merge_with`: work directories of other finished builds on the same data (other fidelities or seeds)
    whose runs the table holds too, e.g. a 1-epoch and a 4-epoch build in one multi-fidelity table.
    """
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}: choose {', '.join(EXECUTORS)}")
    out = Path(out)
    spec.validate()
    data_provenance = _check_data(spec)
    work = WorkDir(work_dir or out.with_name(out.name + ".work"), spec, shard_size)
    started = _started(work)
    pending = work.pending()
    total = len(spec.arch_list()) * len(spec.seeds)
    remaining = sum(len(s.archs) for s in pending)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - remaining, unit="arch", desc=f"building {out.name}")
    options = {"address": ray_address} if executor == "ray" else {}
    try:
        for shard, records in EXECUTORS[executor](spec.to_dict(), pending, workers, **options):
            work.write(shard, records)
            if bar is not None:
                bar.update(len(shard.archs))
    finally:
        if bar is not None:
            bar.close()
    (work.path / "data.json").write_text(json.dumps(data_provenance, indent=2))
    return merge(work, out, started, data_provenance, merge_with)
