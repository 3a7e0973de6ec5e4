"""Imports the released NAS-Bench-360 / NATS-Bench tables (topology and size spaces) into nb360's HDF5 format.

Reads both released layouts without `nats_bench`: the single `*.pickle.pbz2` file
(`{"meta_archs", "arch2infos": {index: {hp: ArchResults state}}, ...}`) and the `-simple`
directory (`meta.pickle.pbz2` plus one `NNNNNN.pickle.pbz2` per arch). The space follows from
`meta_archs`: 15,625 cell strings are the topology space (nb360.space.nb201, hp '12'/'200'),
32,768 channel strings the size space (nb360.space.sss, hp '01'/'12'/'90'). Unpickling runs code, and
these files come from the internet, so a restricted unpickler admits only the container and numpy
types the released files contain.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import math
import os
import pickle
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._files import sha256_file as _sha256_file
from .._safe_pickle import NUMPY_GLOBALS
from .._safe_pickle import RestrictedUnpickler as _SafeUnpickler
from ..errors import DataError, InputError
from ..space import nb201, sss
from .protocols import protocol_for
from .writer import RunData, write_table

# The globals the released files reference (checked on the NATS-Bench fixtures: OrderedDict and
# numpy scalars/dtypes; numpy arrays are admitted too, checked against their data by _safe_pickle).
_ALLOWED_GLOBALS = frozenset({("collections", "OrderedDict")}) | NUMPY_GLOBALS
_ARCH_FILE = re.compile(r"^(\d{6})\.pickle(\.pbz2)?$")
# Schema bounds checked before anything is allocated for a record: NAS benchmarks train for at most
# a few hundred epochs; a record claiming more, or a run whose curves would not fit in half of this
# machine's memory, is corrupt or not a NATS-Bench table.
MAX_EPOCHS = 100_000
CURVE_BYTES_PER_VALUE = 5  # float32 value + presence byte


class RestrictedUnpickler(_SafeUnpickler):
    """An unpickler that refuses every global outside the types a NATS-Bench table file contains."""

    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, _ALLOWED_GLOBALS, source)


def load_pickle(path: Path) -> Any:
    """Load a bz2-compressed (`.pbz2`) or plain pickle with the restricted unpickler."""
    if path.exists() and not path.is_file():
        raise DataError(f"{path} is not a regular file (a NATS-Bench table is a .pickle.pbz2 file or a -simple folder)")
    try:
        with open(path, "rb") as raw:
            magic = raw.read(3)
            raw.seek(0)
            stream: Any = bz2.BZ2File(raw) if magic == b"BZh" else raw
            return RestrictedUnpickler(stream, str(path)).load()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"table source file not found: {path}") from None
    except MemoryError:
        raise DataError(f"{path} does not fit in memory while unpickling: it is corrupt or not a NATS-Bench table "
                        "(the released files load in a few GB)") from None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, IndexError, TypeError) as exc:
        raise DataError(f"{path} is not a readable NATS-Bench pickle ({type(exc).__name__}: {exc}); the file is "
                        "truncated or corrupt: download it again") from None



@dataclass
class _RunAccumulator:
    """Arrays for one (task, hp, seed), one row per recorded arch, grown as records arrive."""

    task: str
    hp: str
    seed: int
    epochs: int
    rows: dict[int, int] = field(default_factory=dict)  # arch index -> row
    capacity: int = 16
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    scalars: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    eval_names: list[str] = field(default_factory=list)  # every eval split seen in the records' keys
    declared_eval_names: list[str] | None = None  # the records' own `eval_names` list (its order is NATS-Bench's)
    network: dict[str, Any] | None = None

    def row(self, arch: int) -> int:
        """The row of `arch`, allocating one (and growing every array) on first sight."""
        r = self.rows.get(arch)
        if r is None:
            r = self.rows[arch] = len(self.rows)
            if r >= self.capacity:
                self._grow()
        return r

    def _grow(self) -> None:
        old, self.capacity = self.capacity, min(self.capacity * 2, nb201.NUM_ARCHS)
        for store in (self.curves, self.scalars):
            for name, (values, present) in store.items():
                new_values = np.full((self.capacity,) + values.shape[1:], np.nan, dtype=values.dtype)
                new_present = np.zeros((self.capacity,) + present.shape[1:], dtype=bool)
                new_values[:old], new_present[:old] = values, present
                store[name] = (new_values, new_present)

    def curve(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.curves:
            self.curves[name] = (np.full((self.capacity, self.epochs), np.nan, dtype=np.float32),
                                 np.zeros((self.capacity, self.epochs), dtype=bool))
        return self.curves[name]

    def scalar(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.scalars:
            self.scalars[name] = (np.full(self.capacity, np.nan), np.zeros(self.capacity, dtype=bool))
        return self.scalars[name]


@dataclass
class _ImportState:
    num_archs: int
    tasks: set[str] | None
    space: Any = nb201  # the space module (nb201 or sss)
    runs: dict[tuple[str, str, int], _RunAccumulator] = field(default_factory=dict)
    nan_dropped: int = 0
    archs_seen: int = 0
    datasets: list[str] = field(default_factory=list)  # in the order the source lists them
    hps: list[str] = field(default_factory=list)


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"expected a number in the table record, got {type(value).__name__} {value!r}") from None


def _put(state: _ImportState, values: np.ndarray, present: np.ndarray, row: int, epoch: int, value: Any,
         where: str) -> None:
    v = _as_float(value)
    if v is None:
        return
    if not 0 <= epoch < values.shape[1]:
        raise DataError(f"{where}: epoch {epoch} is outside the recorded {values.shape[1]} epochs")
    if math.isnan(v):  # NaN in the source means "not measured" (e.g. a mean of an empty list): keep it absent
        state.nan_dropped += 1
        return
    values[row, epoch] = v
    present[row, epoch] = True


def _memory_budget() -> int:
    """Half of this machine's physical memory, in bytes (the most an import may plan to hold)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _check_epochs(epochs: int, where: str, runs: int) -> None:
    """Refuse a declared epoch count the schema or this machine's memory cannot hold, before allocating for it."""
    if epochs > MAX_EPOCHS:
        raise DataError(f"{where}: the record claims {epochs:,} epochs (more than {MAX_EPOCHS:,}); the file is corrupt "
                        "or not a NATS-Bench table")
    # A full run: every arch of the space x (4 train + 4 quantities x 3 eval splits) metrics x epochs.
    need = (runs + 1) * nb201.NUM_ARCHS * 16 * epochs * CURVE_BYTES_PER_VALUE
    if need > _memory_budget():
        raise DataError(f"{where}: the record claims {epochs:,} epochs; importing {runs + 1} run(s) of that length "
                        f"could need {need / 2**30:.1f} GiB, more than half of this machine's memory "
                        f"({_memory_budget() * 2 / 2**30:.1f} GiB): the file is corrupt or not a NATS-Bench table")


def _add_record(state: _ImportState, arch: int, hp: str, task: str, seed: int, rc: dict[str, Any]) -> None:
    where = f"arch {arch} hp {hp} {task} seed {seed}"
    if not isinstance(rc, dict):
        raise DataError(f"{where}: expected a ResultsCount record, got {type(rc).__name__}")
    try:
        epochs = int(rc.get("epochs") or 0)
    except (TypeError, ValueError):
        raise DataError(f"{where}: the record's epoch count {rc.get('epochs')!r} is not a number") from None
    if epochs <= 0:
        raise DataError(f"{where}: the record has no epoch count")
    key = (task, hp, seed)
    acc = state.runs.get(key)
    if acc is None:
        _check_epochs(epochs, where, len(state.runs))
        acc = state.runs[key] = _RunAccumulator(task, hp, seed, epochs)
    if acc.epochs != epochs:
        raise DataError(f"{where}: {epochs} epochs, but other archs of this run record {acc.epochs}")
    for order, value in ((state.datasets, task), (state.hps, hp)):
        if value not in order:
            order.append(value)
    if acc.declared_eval_names is None and isinstance(rc.get("eval_names"), (list, tuple)):
        acc.declared_eval_names = [str(n) for n in rc["eval_names"]]
    row = acc.row(arch)
    for source_key, metric in (("train_losses", "train-loss"), ("train_acc1es", "train-accuracy"),
                               ("train_acc5es", "train-accuracy5"), ("train_times", "train-time")):
        per_epoch = rc.get(source_key)
        if per_epoch is None:
            continue
        values, present = acc.curve(metric)
        for epoch, value in per_epoch.items():
            _put(state, values, present, row, int(epoch), value, where)
    for source_key, quantity in (("eval_losses", "loss"), ("eval_acc1es", "accuracy"), ("eval_acc5es", "accuracy5"),
                                 ("eval_times", "time")):
        per_split = rc.get(source_key)
        if per_split is None:
            continue
        for split_epoch, value in per_split.items():
            split, sep, epoch = str(split_epoch).rpartition("@")
            if not sep or not epoch.isdigit():
                raise DataError(f"{where}: eval key {split_epoch!r} is not of the form '<split>@<epoch>'")
            if split not in acc.eval_names:
                acc.eval_names.append(split)
            values, present = acc.curve(f"{split}-{quantity}")
            _put(state, values, present, row, int(epoch), value, where)
    for name, value in (("params", rc.get("params")), ("flops", rc.get("flop"))):
        values, present = acc.scalar(name)
        v = _as_float(value)
        if v is not None and not math.isnan(v):
            values[row], present[row] = v, True
    latency = rc.get("latency")
    if latency is not None:
        finite = [float(x) for x in (latency if isinstance(latency, (list, tuple)) else [latency])
                  if x is not None and not math.isnan(float(x))]
        values, present = acc.scalar("latency")
        if finite:
            values[row], present[row] = float(np.mean(finite)), True
    config = rc.get("arch_config") or {}
    # The network facts every arch of the run shares (per-arch ones, the arch string, are the index's).
    keys = ("channel", "num_cells", "class_num") if state.space is nb201 else ("name", "genotype", "class_num")
    network = {k: config.get(k) for k in keys}
    if acc.network is None:
        acc.network = network
    elif acc.network != network:
        raise DataError(f"{where}: network config {network} differs from other archs' {acc.network}")


def _add_arch(state: _ImportState, index: int, per_hp: dict[str, Any], meta_archs: list[str]) -> None:
    """Add every (hp, dataset, seed) record of one arch."""
    if not isinstance(per_hp, dict):
        raise DataError(f"arch {index}: expected a dict of fidelities, got {type(per_hp).__name__}")
    for hp, arch_state in per_hp.items():
        arch_str = arch_state.get("arch_str") if isinstance(arch_state, dict) else None
        if arch_str is None:
            raise DataError(f"arch {index} hp {hp}: not an ArchResults record")
        nb360_index = state.space.index_of(arch_str)
        if meta_archs and meta_archs[index] != arch_str:
            raise DataError(f"arch {index}: record says {arch_str} but meta_archs says {meta_archs[index]}")
        for (task, seed), rc in arch_state.get("all_results", {}).items():
            if state.tasks is not None and task not in state.tasks:
                continue
            _add_record(state, nb360_index, str(hp), str(task), int(seed), rc)
    state.archs_seen += 1


def _finish(state: _ImportState) -> list[RunData]:
    runs = []
    for (task, hp, seed), acc in sorted(state.runs.items()):
        train = [m for m in ("train-loss", "train-accuracy", "train-accuracy5", "train-time") if m in acc.curves]
        evals = [f"{s}-{q}" for s in acc.eval_names for q in ("loss", "accuracy", "accuracy5", "time")
                 if f"{s}-{q}" in acc.curves]
        metrics = train + evals
        scalars = [s for s in ("params", "flops", "latency") if s in acc.scalars]
        n = len(acc.rows)
        curves = np.stack([acc.curves[m][0][:n] for m in metrics], axis=1)
        present = np.stack([acc.curves[m][1][:n] for m in metrics], axis=1)
        scalar_values = np.stack([acc.scalars[s][0][:n] for s in scalars], axis=1) if scalars else np.zeros((n, 0))
        scalar_present = np.stack([acc.scalars[s][1][:n] for s in scalars], axis=1) if scalars else \
            np.zeros((n, 0), dtype=bool)
        valid_split = "x-valid" if "x-valid" in acc.eval_names else ("ori-test" if "ori-test" in acc.eval_names
                                                                     else None)
        declared = [n for n in acc.declared_eval_names or [] if n in acc.eval_names]
        eval_names = declared + [n for n in acc.eval_names if n not in declared]
        runs.append(RunData(task=task, hp=hp, seed=seed, metrics=metrics, scalars=scalars,
                            arch_ids=np.fromiter(acc.rows, dtype=np.int64, count=n), curves=curves,
                            curves_present=present, scalar_values=scalar_values, scalars_present=scalar_present,
                            valid_split=valid_split, time_kind="pseudo", eval_names=eval_names,
                            protocol=protocol_for(task, hp, acc.epochs, acc.network or {})))
    return runs


def _iter_simple_dir(src: Path, meta_archs: list[str]) -> Iterator[tuple[int, Path]]:
    for entry in sorted(os.listdir(src)):
        match = _ARCH_FILE.match(entry)
        if match:
            index = int(match.group(1))
            if index >= len(meta_archs):
                raise DataError(f"{src / entry}: arch index {index} is beyond the {len(meta_archs)} archs of meta")
            yield index, src / entry


_SPACES = {nb201.NUM_ARCHS: (nb201, "nats-tss", "the NB201 topology space"),
           sss.NUM_ARCHS: (sss, "nats-sss", "the NATS-Bench size space")}


def _check_meta(meta: Any, where: str) -> tuple[Any, list[str]]:
    """The space module a meta_archs list belongs to, and the list, checked against nb360's index order."""
    if not isinstance(meta, dict) or "meta_archs" not in meta:
        raise DataError(f"{where} is not a NATS-Bench table (no 'meta_archs')")
    archs = list(meta["meta_archs"])
    if len(archs) not in _SPACES:
        raise DataError(f"{where} lists {len(archs)} archs; NATS-Bench's topology space has {nb201.NUM_ARCHS} and "
                        f"its size space {sss.NUM_ARCHS}")
    space, _, name = _SPACES[len(archs)]
    if archs == space.all_arch_strs():
        return space, archs
    try:  # find what differs, for the message
        mismatch = next((i for i, a in enumerate(archs) if space.index_of(a) != i), None)
    except InputError as exc:
        raise DataError(f"{where}: {exc}; the file is not a table of {name}") from None
    if mismatch is not None:
        a = archs[mismatch]
        raise DataError(f"{where}: arch {mismatch} is {a}, which nb360 indexes as {space.index_of(a)}; the file does "
                        f"not follow the NATS-Bench order of {name}")
    return space, archs


def import_nats(src: str | os.PathLike, out: str | os.PathLike, tasks: Iterable[str] | None = None,
                progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None) -> Path:
    """Convert a released NATS-Bench / NAS-Bench-360 table (tss or sss; file or -simple dir) into an nb360 table."""
    src, out = Path(src), Path(out)
    progress = progress or (lambda it, total: it)
    state = _ImportState(num_archs=nb201.NUM_ARCHS, tasks=set(tasks) if tasks else None)
    if src.is_dir():
        meta_path = next((src / n for n in ("meta.pickle.pbz2", "meta.pickle") if (src / n).exists()), None)
        if meta_path is None:
            raise DataError(f"{src} is not a NATS-Bench -simple directory: meta.pickle.pbz2 is missing")
        state.space, meta_archs = _check_meta(load_pickle(meta_path), str(meta_path))
        state.num_archs = state.space.NUM_ARCHS
        files = list(_iter_simple_dir(src, meta_archs))
        if not files:
            raise DataError(f"{src} holds no per-arch files (NNNNNN.pickle.pbz2)")
        digest = hashlib.sha256()
        for index, path in progress(files, len(files)):
            digest.update(f"{path.name}:{_sha256_file(path)}\n".encode())
            _add_arch(state, index, load_pickle(path), meta_archs)
        provenance = {"source_file": src.name, "source_format": f"{_SPACES[state.num_archs][1]} -simple directory",
                      "source_sha256": _sha256_file(meta_path), "source_files_sha256": digest.hexdigest(),
                      "source_files": len(files) + 1}
    elif src.is_file():
        data = load_pickle(src)
        state.space, meta_archs = _check_meta(data, str(src))
        state.num_archs = state.space.NUM_ARCHS
        arch2infos = data.get("arch2infos")
        if not isinstance(arch2infos, dict) or not arch2infos:
            raise DataError(f"{src} has no per-arch records ('arch2infos' is empty): it may be the meta file of a "
                            "-simple directory; import the directory instead")
        for index, per_hp in progress(sorted(arch2infos.items()), len(arch2infos)):
            _add_arch(state, int(index), per_hp, meta_archs)
        provenance = {"source_file": src.name, "source_format": f"{_SPACES[state.num_archs][1]} single file",
                      "source_sha256": _sha256_file(src)}
    else:
        raise DataError(f"table source not found: {src}")
    if not state.runs:
        wanted = f" for tasks {sorted(state.tasks)}" if state.tasks else ""
        raise InputError(f"{src} holds no records{wanted}")
    provenance.update({"importer": f"nb360 {__version__} nb360.table.importer", "archs_imported": state.archs_seen,
                       "nan_values_dropped": state.nan_dropped,
                       "note": "values as recorded by the source; times are NATS-Bench pseudo-times (time_kind)"})
    space_name = "nb201" if state.space is nb201 else "sss"
    return write_table(out, _finish(state), archs=state.space.all_arch_strs(),
                       space=space_name, provenance=provenance,
                       source_layout={"format": _SPACES[state.num_archs][1], "datasets": state.datasets,
                                      "hps": state.hps})
