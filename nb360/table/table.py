"""`nb360.Table`: the precomputed table, memory-mapped, with single, batched and whole-table queries.

Opening maps the file and reads a small JSON index; every lookup is a bounds-checked read of the
mapping in C++ (nb360._table), so opening costs microseconds and memory stays in the shared page
cache. Every value comes from a chunk whose checksum was checked (on its first touch), a table
changed on disk under a reader raises instead of answering, and a closed table raises in every
thread (docs/table-format.md, "Checksums" and "Files changed on disk"). Imports no torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _table
from ..errors import ClosedTableError, DataError, InputError, MissingValueError
from ..space import for_table, nb201
from .schema import RUN_DATASETS, metric_direction, split_of, validate_index

_NO_SEED = object()


@dataclass(frozen=True)
class RunInfo:
    """What the index records about one (task, hp, seed) run group."""

    task: str
    hp: str
    seed: int
    epochs: int
    metrics: tuple[str, ...]
    scalars: tuple[str, ...]
    valid_split: str | None
    time_kind: str
    protocol: dict[str, Any]
    group: str
    datasets: dict[str, int]
    sha256: dict[str, str]
    row_sharing: str = "none"
    chunk_checksums: dict[str, Any] | None = None  # {"address", "xxh64"} (header version 2)
    eval_names: tuple[str, ...] = ()  # the source records' eval_names in their order (imported NATS tables)


class _Run:
    """A run group opened for lookups: its RunInfo, the C++ view and name -> position maps."""

    __slots__ = ("info", "view", "metric_index", "scalar_index", "epochs")

    def __init__(self, table_file: _table.TableFile, info: RunInfo, num_archs: int) -> None:
        self.info = info
        sums = info.chunk_checksums or {}
        if table_file.verifies and not sums:
            raise _table.FormatError(f"run {info.group}: the index records no chunk checksums for it")
        self.view = _table.RunView(table_file, [info.datasets[name] for name in RUN_DATASETS],
                                   int(sums.get("address", 0)), int(str(sums.get("xxh64", "0")), 16), info.group)
        if self.view.num_metrics != len(info.metrics) or self.view.num_epochs != info.epochs or \
                self.view.num_archs != num_archs:
            raise _table.FormatError(f"run {info.group}: datasets disagree with the index ({self.view.num_archs} "
                                     f"archs, {self.view.num_metrics} metrics × {self.view.num_epochs} epochs)")
        self.metric_index = {m: i for i, m in enumerate(info.metrics)}
        self.scalar_index = {s: i for i, s in enumerate(info.scalars)}
        self.epochs = info.epochs


class Table:
    """A precomputed NAS benchmark table (see docs/table-format.md)."""

    def __init__(self, path: str, table_file: _table.TableFile, index: dict[str, Any]) -> None:
        self.path = path
        self._file = table_file
        self._index = index
        self.space: str = index["space"]
        self.num_archs: int = int(index["num_archs"])
        self.runs: tuple[RunInfo, ...] = tuple(
            RunInfo(task=r["task"], hp=str(r["hp"]), seed=int(r["seed"]), epochs=int(r["epochs"]),
                    metrics=tuple(r["metrics"]), scalars=tuple(r["scalars"]), valid_split=r.get("valid_split"),
                    time_kind=r.get("time_kind", "measured"), protocol=r.get("protocol", {}),
                    group=r.get("group", ""), datasets={k: int(v) for k, v in r["datasets"].items()},
                    sha256=r.get("sha256", {}), row_sharing=r.get("row_sharing", "none"),
                    chunk_checksums=r.get("chunk_checksums"), eval_names=tuple(r.get("eval_names", ())))
            for r in index["runs"])
        self._opened: dict[tuple[str, str, int], _Run] = {}
        self._selected: dict[tuple[Any, Any, Any], tuple[_Run, ...]] = {}
        self._lock = threading.Lock()
        self._used_time = 0.0
        self._closed = False

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | os.PathLike, *, verify: bool = True) -> Table:
        """Open a table file (memory-mapped; nothing is read until queried).

        verify=False skips the checksums (and accepts tables of header version 1, which have none):
        values of a corrupt file are then returned unchecked. For measurements and old files only.
        """
        path = os.fspath(path)
        try:
            table_file = _table.TableFile(path, verify)
            raw = table_file.index_json()
        except _table.FileOpenError as exc:
            raise DataError(f"cannot open table: {exc}") from None
        except _table.FormatError as exc:
            raise DataError(str(exc) if path in str(exc) else f"{path}: {exc}") from None
        try:
            index = json.loads(raw)
            if not isinstance(index, dict):
                raise TypeError("the index is not a JSON object")
            validate_index(index)
            return cls(path, table_file, index)
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{path}: the table index is corrupt ({type(exc).__name__}: {exc}); re-create the "
                            "table") from None

    def __repr__(self) -> str:
        return f"Table({self.path!r}, tasks={self.tasks}, runs={len(self.runs)})"

    def __len__(self) -> int:
        return self.num_archs

    def __iter__(self) -> Iterator[int]:
        """Iterate over the arch indices that any run records."""
        return iter(self.archs().tolist())

    # ------------------------------------------------------------------ what is in it
    @property
    def tasks(self) -> list[str]:
        """Task (dataset) names in the table, in the order of the index."""
        return list(dict.fromkeys(r.task for r in self.runs))

    def hps(self, task: str | None = None) -> list[str]:
        """Fidelities (hp: training epochs of the protocol) recorded for a task."""
        task = self._task(task)
        return list(dict.fromkeys(r.hp for r in self.runs if r.task == task))

    def highest_hp(self, task: str | None = None) -> str:
        """The highest fidelity recorded for a task (what commands use when no --hp is given)."""
        return max(self.hps(task), key=lambda hp: (int(hp), hp) if hp.isdigit() else (-1, hp))

    def seeds(self, hp: str | None = None, task: str | None = None) -> list[int]:
        """Seeds recorded for (task, hp); hp defaults to the highest recorded."""
        task = self._task(task)
        hp = self._hp(hp, task)
        return [r.seed for r in self.runs if r.task == task and r.hp == hp]

    def metrics(self, hp: str | None = None, task: str | None = None) -> tuple[str, ...]:
        """Curve metrics recorded for (task, hp); hp defaults to the highest recorded."""
        return self._select(task, hp, None)[0].info.metrics

    def epochs(self, hp: str | None = None, task: str | None = None) -> int:
        """Number of epochs recorded for (task, hp); hp defaults to the highest recorded."""
        return self._select(task, hp, None)[0].epochs

    @property
    def source_layout(self) -> dict[str, Any]:
        """How the released source of an imported table was organised (format, dataset and hp order); {} if none."""
        return dict(self._index.get("source_layout") or {})

    def info(self) -> dict[str, Any]:
        """File-level facts: schema, provenance, and every run group with its protocol."""
        keys = ("schema_version", "space", "num_archs", "nb360_version", "created", "provenance", "source_layout")
        out = {k: self._index.get(k) for k in keys}
        out["path"] = self.path
        out["size_bytes"] = self._file.size
        out["runs"] = [
            {"task": r.task, "hp": r.hp, "seed": r.seed, "epochs": r.epochs, "metrics": list(r.metrics),
             "scalars": list(r.scalars), "valid_split": r.valid_split, "time_kind": r.time_kind,
             "archs_recorded": int(self.archs(task=r.task, hp=r.hp, seed=r.seed).size),
             "rows": int(self._file.dataset_info(r.datasets["curves"])["shape"][0]), "row_sharing": r.row_sharing,
             "protocol": r.protocol}
            for r in self.runs]
        return out

    def archs(self, task: str | None = None, hp: str | None = None, seed: int | None = None) -> np.ndarray:
        """Indices of the archs recorded by the matching runs (all runs by default), ascending."""
        recorded = np.zeros(self.num_archs, dtype=bool)
        for run in self.runs:
            if (task is None or run.task == task) and (hp is None or run.hp == str(hp)) and \
                    (seed is None or run.seed == seed):
                recorded |= self._open_run(run).view.arch_rows() >= 0  # a checked copy
        return np.flatnonzero(recorded)

    def _view(self, name: str, run: RunInfo, dtype: str) -> np.ndarray:
        """A zero-copy read-only numpy view of one dataset of a run group (whose chunks were all checked)."""
        self._open_run(run).view.verify_all()
        d = self._file.dataset_info(run.datasets[name])
        count = int(np.prod(d["shape"], dtype=np.int64))
        if np.dtype(dtype).str != np.dtype(d["dtype"]).str:
            raise DataError(f"{self.path}: {run.group}/{name} is {d['dtype']}, expected {dtype}")
        if count == 0:
            return np.zeros(d["shape"], dtype=dtype)
        return np.frombuffer(self._file, dtype=dtype, count=count, offset=d["offset"]).reshape(d["shape"])

    # ------------------------------------------------------------------ resolution helpers
    def task_name(self, task: str | None) -> str:
        """The task a query means: `task` itself (checked), or the table's only task when None."""
        return self._task(task)

    def _task(self, task: str | None) -> str:
        tasks = self.tasks
        if task is None:
            if len(tasks) == 1:
                return tasks[0]
            raise InputError(f"this table holds several tasks ({', '.join(tasks)}): pass task=")
        if task not in tasks:
            raise InputError(f"task {task!r} is not in this table; it holds {', '.join(tasks)}")
        return task

    def _hp(self, hp: Any, task: str) -> str:
        """`hp` as a string, or the highest fidelity recorded for `task` when None (every query's default)."""
        return self.highest_hp(task) if hp is None else str(hp)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedTableError(f"the table {self.path} is closed: open it again with Table.open")

    def _select(self, task: str | None, hp: Any, seed: Any) -> tuple[_Run, ...]:
        key = (task, hp, seed)
        runs = self._selected.get(key)
        if runs is not None:
            return runs
        self._check_open()
        task_name = self._task(task)
        hp_name = self._hp(hp, task_name)
        matching = [r for r in self.runs if r.task == task_name and r.hp == hp_name]
        if not matching:
            raise InputError(f"hp {hp_name!r} is not recorded for task {task_name!r}; recorded: "
                             f"{', '.join(repr(h) for h in self.hps(task_name))}")
        if seed is not None:
            matching = [r for r in matching if r.seed == int(seed)]
            if not matching:
                raise InputError(f"seed {seed} is not recorded for {task_name} hp {hp_name!r}; recorded seeds: "
                                 f"{', '.join(map(str, self.seeds(hp_name, task_name)))}")
        runs = tuple(self._open_run(r) for r in matching)
        with self._lock:
            self._selected[key] = runs
        return runs

    def _open_run(self, info: RunInfo) -> _Run:
        key = (info.task, info.hp, info.seed)
        run = self._opened.get(key)
        if run is None:
            self._check_open()
            try:
                run = _Run(self._file, info, self.num_archs)
            except _table.FormatError as exc:
                raise DataError(f"{self.path}: {exc}") from None
            with self._lock:
                self._opened[key] = run
        return run

    def run_view(self, task: str, hp: str, seed: int) -> _table.RunView:
        """The compiled lookup object of one run group (for compiled callers such as nb360.compat.nats)."""
        return self._select(task, hp, seed)[0].view

    def arch_index(self, arch: Any) -> int:
        """The index of an arch given as index, arch string or op tuple (validated)."""
        if type(arch) is int and 0 <= arch < self.num_archs:
            return arch
        if self.space == "nb201":
            return nb201.index_of(arch)
        if self.space == "sss":
            return for_table(self.space).index_of(arch)
        if isinstance(arch, (int, np.integer)) and 0 <= int(arch) < self.num_archs:
            return int(arch)
        raise InputError(f"arch {arch!r} is not an index in [0, {self.num_archs}) of this {self.space} table")

    @staticmethod
    def _metric(run: _Run, metric: str) -> int:
        m = run.metric_index.get(metric)
        if m is None:
            raise InputError(f"metric {metric!r} is not recorded for {run.info.task} hp {run.info.hp!r}; recorded: "
                             f"{', '.join(run.info.metrics)}")
        return m

    @staticmethod
    def _epoch(run: _Run, epoch: int) -> int:
        e = int(epoch)
        n = run.epochs
        if -n <= e < 0:
            e += n
        if not 0 <= e < n:
            raise InputError(f"epoch {epoch} is out of range for {run.info.task} hp {run.info.hp!r}: epochs run "
                             f"0..{n - 1} (or -1 for the last)")
        return e

    # ------------------------------------------------------------------ queries
    def query(self, arch: Any, metric: str, epoch: int = -1, seed: int | None = None, hp: str | None = None,
              task: str | None = None) -> float:
        """One value of `metric` after `epoch` (-1: last) for `arch`; seed=None averages the recorded seeds."""
        runs = self._selected.get((task, hp, seed)) or self._select(task, hp, seed)
        a = arch if type(arch) is int and 0 <= arch < self.num_archs else self.arch_index(arch)
        if len(runs) == 1:
            run = runs[0]
            m = run.metric_index.get(metric)
            if m is None:
                m = self._metric(run, metric)
            e = epoch if type(epoch) is int and 0 <= epoch < run.epochs else self._epoch(run, epoch)
            try:
                return run.view.get(a, m, e)
            except _table.MissingValueError:
                raise self._missing(run, a, metric, e) from None
        values = []
        for run in runs:
            try:
                values.append(run.view.get(a, self._metric(run, metric), self._epoch(run, epoch)))
            except _table.MissingValueError:
                continue
        if not values:
            raise self._missing(runs[0], a, metric, self._epoch(runs[0], epoch), all_seeds=True)
        return float(np.mean(values))

    def _missing(self, run: _Run, arch: int, metric: str, epoch: int, all_seeds: bool = False) -> MissingValueError:
        seeds = "any recorded seed" if all_seeds else f"seed {run.info.seed}"
        return MissingValueError(f"{metric} at epoch {epoch} is not recorded for arch {arch} "
                                 f"({run.info.task}, hp {run.info.hp!r}, {seeds}); the presence mask says so — "
                                 f"see Table.curve(..., with_mask=True) for the recorded epochs")

    def query_batch(self, archs: Any, metric: str | Sequence[str], epoch: Any = -1, seed: int | None = None,
                    hp: str | None = None, task: str | None = None, missing: str = "raise") -> np.ndarray:
        """Vectorised query: archs (indices or arch strings), metric name(s) and epoch(s) broadcast together.

        missing="raise" raises MissingValueError if any value is not recorded; missing="nan" returns NaN there.
        """
        if missing not in ("raise", "nan"):
            raise InputError(f"missing must be 'raise' or 'nan', got {missing!r}")
        values, present = self._gather(archs, metric, epoch, seed, hp, task)
        if missing == "raise" and not present.all():
            first = np.unravel_index(int(np.argmin(present)), present.shape) if present.ndim else ()
            raise MissingValueError(f"{int((~present).sum())} of {present.size} requested values are not recorded "
                                    f"(first at position {tuple(int(i) for i in first)}); pass missing='nan' to get "
                                    "NaN there")
        return values

    def _gather(self, archs: Any, metric: str | Sequence[str], epoch: Any, seed: int | None, hp: str | None,
                task: str | None) -> tuple[np.ndarray, np.ndarray]:
        """(values, presence mask) of a vectorised query; over several seeds, the mean of the recorded ones."""
        runs = self._select(task, hp, seed)
        arch_idx = self._arch_array(archs)
        total = count = None
        values = present = None
        for run in runs:
            metric_idx = np.int64(self._metric(run, metric)) if isinstance(metric, str) else \
                np.vectorize(lambda m: self._metric(run, m), otypes=[np.int64])(np.asarray(metric))
            epoch_idx = self._epoch_array(run, epoch)
            shape = np.broadcast_shapes(np.shape(arch_idx), np.shape(metric_idx), np.shape(epoch_idx))
            values, present = run.view.gather(*(self._flat(x, shape) for x in (arch_idx, metric_idx, epoch_idx)))
            values, present = values.reshape(shape), present.reshape(shape)
            if len(runs) > 1:  # mean over the seeds that record each value
                total = np.where(present, values, 0.0) if total is None else total + np.where(present, values, 0.0)
                count = present.astype(np.int64) if count is None else count + present
        if len(runs) > 1:
            with np.errstate(invalid="ignore", divide="ignore"):
                values = (total / count).astype(np.float32)
            present = count > 0
        return values, present

    @staticmethod
    def _flat(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """x as a flat int64 array of prod(shape) elements, or of one element to broadcast in C++."""
        x = np.asarray(x, dtype=np.int64)
        if x.size == 1:
            return x.reshape(1)
        return np.ascontiguousarray(np.broadcast_to(x, shape)).reshape(-1)

    @staticmethod
    def _epoch_array(run: _Run, epoch: Any) -> np.ndarray:
        e = np.asarray(epoch, dtype=np.int64)
        if e.size and (e.min() < -run.epochs or e.max() >= run.epochs):
            raise InputError(f"epoch out of range for {run.info.task} hp {run.info.hp!r}: epochs run "
                             f"0..{run.epochs - 1} (or negative from the end)")
        return np.where(e < 0, e + run.epochs, e) if e.size and e.min() < 0 else e

    def _arch_array(self, archs: Any) -> np.ndarray:
        if isinstance(archs, (str, tuple)):
            return np.int64(self.arch_index(archs))
        arr = np.asarray(archs)
        if arr.dtype.kind in "iu":
            if arr.size and (arr.min() < 0 or arr.max() >= self.num_archs):
                bad = arr[(arr < 0) | (arr >= self.num_archs)].ravel()[0]
                raise InputError(f"arch index {bad} is out of range [0, {self.num_archs})")
            return arr.astype(np.int64, copy=False)
        return np.array([self.arch_index(a) for a in np.ravel(archs)], dtype=np.int64).reshape(np.shape(archs))

    def curve(self, arch: Any, metric: str, seed: int | None = None, hp: str | None = None, task: str | None = None,
              with_mask: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The per-epoch curve of `metric` (NaN where not recorded); with_mask=True also returns the mask.

        The mask is the table's presence mask, not ~isnan: a recorded NaN (a diverged run) has mask 1.
        """
        run0 = self._select(task, hp, seed)[0]
        epochs = np.arange(run0.epochs)
        values, present = self._gather(self.arch_index(arch), metric, epochs, seed, hp, task)
        return (values, present) if with_mask else values

    def scalar(self, arch: Any, name: str, seed: int | None = None, hp: str | None = None,
               task: str | None = None) -> float:
        """A per-arch scalar (params, flops, latency, ...) of the run; seed=None averages seeds."""
        a = self.arch_index(arch)
        values = []
        for run in self._select(task, hp, seed):
            s = run.scalar_index.get(name)
            if s is None:
                raise InputError(f"scalar {name!r} is not recorded for {run.info.task} hp {run.info.hp!r}; recorded: "
                                 f"{', '.join(run.info.scalars)}")
            try:
                values.append(run.view.scalar(a, s))
            except _table.MissingValueError:
                continue
        if not values:
            raise MissingValueError(f"{name} is not recorded for arch {a}")
        return float(np.mean(values))

    def scalar_batch(self, name: str, archs: Any = None, seed: int | None = None, hp: str | None = None,
                     task: str | None = None) -> np.ndarray:
        """A per-arch scalar for many archs (all by default); NaN where not recorded."""
        arch_idx = np.arange(self.num_archs) if archs is None else np.atleast_1d(self._arch_array(archs))
        total = np.zeros(arch_idx.shape, dtype=np.float64)
        count = np.zeros(arch_idx.shape, dtype=np.int64)
        for run in self._select(task, hp, seed):
            s = run.scalar_index.get(name)
            if s is None:
                raise InputError(f"scalar {name!r} is not recorded; recorded: {', '.join(run.info.scalars)}")
            values, present = run.view.gather_scalars(arch_idx.ravel(), s)
            total += np.where(present, values, 0.0).reshape(arch_idx.shape)
            count += present.reshape(arch_idx.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    def cost(self, arch: Any, hp: str | None = None, task: str | None = None,
             seed: int | None = None) -> dict[str, Any]:
        """Cost facts of an arch: the recorded scalars (params in M, flops in M, latency in s) and times (s)."""
        run0 = self._select(task, hp, seed)[0]
        out: dict[str, Any] = {}
        for name in run0.info.scalars:
            try:
                out[name] = self.scalar(arch, name, seed=seed, hp=hp, task=task)
            except MissingValueError:
                out[name] = None
        for metric in run0.info.metrics:
            split, quantity = split_of(metric)
            if quantity != "time":
                continue
            values = self.curve(arch, metric, seed=seed, hp=hp, task=task)
            recorded = values[~np.isnan(values)]
            out[f"{split}-time-per-epoch"] = float(recorded.mean()) if recorded.size else None
            out[f"{split}-time-total"] = float(recorded.sum()) if recorded.size else None
        out["time_kind"] = run0.info.time_kind
        return out

    def best(self, metric: str, epoch: int = -1, hp: str | None = None, task: str | None = None,
             seed: int | None = None, mode: str | None = None, max_params: float | None = None,
             max_flops: float | None = None, unique: bool = False) -> tuple[int, float]:
        """The arch with the best `metric` at `epoch` (mode 'max'/'min', inferred from the name), within limits."""
        mode = mode or metric_direction(metric)
        if mode not in ("max", "min"):
            raise InputError(f"mode must be 'max' or 'min', got {mode!r}")
        candidates = np.array(nb201.unique_indices()) if unique and self.space == "nb201" else np.arange(self.num_archs)
        values = self.query_batch(candidates, metric, epoch, seed=seed, hp=hp, task=task, missing="nan").astype(np.float64)
        for limit, name in ((max_params, "params"), (max_flops, "flops")):
            if limit is not None:
                scal = self.scalar_batch(name, candidates, seed=seed, hp=hp, task=task)
                values[~(scal <= limit)] = np.nan
        if np.isnan(values).all():
            raise MissingValueError(f"no arch records {metric} at epoch {epoch} within the given limits")
        pick = int(np.nanargmax(values) if mode == "max" else np.nanargmin(values))
        return int(candidates[pick]), float(values[pick])

    # ------------------------------------------------------------------ simulated search time
    def simulate_train_eval(self, arch: Any, hp: str, epoch: int = -1, task: str | None = None,
                            seed: int | None = None, metric: str | None = None) -> tuple[float, float, float]:
        """Simulate training `arch` to `epoch` and evaluating it, as NATS-Bench does.

        Returns (validation value, time cost, total simulated time of this handle). The time cost is the
        recorded train time up to and including `epoch` plus one evaluation of the validation split; it
        is added to this handle's account (see reset_time). The validation value is `metric`, by default
        the run's validation split accuracy (NATS: x-valid, or ori-test for tasks without one).
        """
        runs = self._selected.get((task, hp, seed)) or self._select(task, hp, seed)
        a = arch if type(arch) is int and 0 <= arch < self.num_archs else self.arch_index(arch)
        split = runs[0].info.valid_split or "ori-test"
        metric = metric or f"{split}-accuracy"
        values, costs = [], []
        for run in runs:  # direct C++ lookups: this sits in the inner loop of every tabular search
            e = epoch if type(epoch) is int and 0 <= epoch < run.epochs else self._epoch(run, epoch)
            try:
                value = run.view.get(a, self._metric(run, metric), e)
            except _table.MissingValueError:
                continue
            train, present = run.view.gather(np.array([a]), np.array([self._metric(run, "train-time")]),
                                             np.arange(e + 1))
            eval_index = run.metric_index.get(f"{split}-time")
            try:
                eval_time = run.view.get(a, eval_index, e) if eval_index is not None else 0.0
            except _table.MissingValueError:
                eval_time = 0.0
            values.append(value)
            costs.append(float(train[present].sum(dtype=np.float64)) + eval_time)
        if not values:
            raise self._missing(runs[0], a, metric, self._epoch(runs[0], epoch), all_seeds=len(runs) > 1)
        value, cost = (values[0], costs[0]) if len(values) == 1 else (float(np.mean(values)), float(np.mean(costs)))
        with self._lock:
            self._used_time += cost
            used = self._used_time
        return value, cost, used

    @property
    def used_time(self) -> float:
        """Simulated seconds charged to this handle by simulate_train_eval."""
        return self._used_time

    def reset_time(self) -> None:
        """Zero the simulated-time account."""
        with self._lock:
            self._used_time = 0.0

    # ------------------------------------------------------------------ whole-table access
    def arrays(self, hp: str | None = None, task: str | None = None,
               seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Zero-copy read-only views of one run group: (arch_ids (R,), curves (R, M, E), present (R, M, E)).

        Row r holds the arch arch_ids[r] trained for it; the metric axis follows Table.metrics(hp, task).
        In a run with row sharing (info()["runs"][k]["row_sharing"] == "isomorphism") the other members
        of that arch's isomorphism class read the same row; Table.archs() lists every arch a run answers.
        This is the fast path for traversing a whole table.
        """
        if seed is None and len(self.seeds(hp, task)) > 1:
            raise InputError(f"arrays() needs seed= (recorded: {self.seeds(hp, task)})")
        info = self._select(task, hp, seed)[0].info
        rows = self._view("arch_rows", info, "<i4")
        curves = self._view("curves", info, "<f4")
        mapped = np.flatnonzero(rows >= 0)
        arch_ids = np.full(curves.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(arch_ids, rows[mapped], mapped)  # the trained arch is its class's smallest index
        return arch_ids, curves, self._view("curves_present", info, "u1").view(bool)

    def verify(self) -> None:
        """Check every chunk checksum and every dataset's recorded sha256; raise DataError on a mismatch.

        Lookups check each chunk on first touch anyway; this reads the whole file now. The sha256s are
        computed from reads of the open file (pread, not the mapping), so a file changed meanwhile raises.
        """
        self._check_open()
        fd = self._file.fileno  # the mapped file itself, even if another was renamed over its path since
        for run in self.runs:
            if self._file.verifies:
                self._open_run(run).view.verify_all()
            for name in RUN_DATASETS:
                expected = run.sha256.get(name)
                if not expected:
                    continue
                d = self._file.dataset_info(run.datasets[name])
                digest = hashlib.sha256()
                at, end = d["offset"], d["offset"] + d["nbytes"]
                while at < end:
                    block = os.pread(fd, min(end - at, 1 << 20), at)
                    if not block:
                        raise DataError(f"{self.path}: the file ends inside {run.group}/{name}: it is truncated")
                    digest.update(block)
                    at += len(block)
                if digest.hexdigest() != expected:
                    raise DataError(f"{self.path}: dataset {run.group}/{name} is corrupt (sha256 "
                                    f"{digest.hexdigest()[:12]}… != recorded {expected[:12]}…); download or "
                                    "re-create the table")
        self._file.check_unchanged()

    def release_pages(self) -> None:
        """Drop this process's mapped pages of the table, e.g. after a full traversal.

        The pages stay in the OS page cache (shared by every process that opens the table); the next
        lookup maps them in again at the cost of a minor page fault. Views from arrays() stay valid.
        """
        self._file.release_pages()

    def close(self) -> None:
        """Close the table: every later query, in every thread, raises ClosedTableError.

        The mapping is released when no view of it remains (views from arrays() stay valid; queries
        already running finish on valid memory).
        """
        with self._lock:
            self._closed = True
            self._file.close()
            self._opened.clear()
            self._selected.clear()

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
