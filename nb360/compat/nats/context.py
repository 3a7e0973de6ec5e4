"""A table opened for the NATS-Bench facade: per-(dataset, hp) compiled plans and per-arch metadata.

Everything here is immutable once built and built on first use: the arch strings, which runs record
which arch, and one `nb360._table.NatsPlan` per (dataset, hp) that answers nats_bench's per-query
semantics in one C++ call (see csrc/table/nats_plan.cpp).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _table
from ...errors import DataError, InputError
from ...space import for_table
from ...table import RunInfo, Table
from ...table.schema import split_of
from .errors import NATSKeyError

STOCK_DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
COMMENTS = {
    "cifar10-valid": "In this dict, train-loss/accuracy/time is the metric on the train set of CIFAR-10. The "
                     "test-loss/accuracy/time is the performance of the CIFAR-10 test set after training on the train "
                     "set by {:} epochs. The per-time and total-time indicate the per epoch and total time costs, "
                     "respectively.",
    "cifar10": "In this dict, train-loss/accuracy/time is the metric on the train+valid sets of CIFAR-10. The "
               "test-loss/accuracy/time is the performance of the CIFAR-10 test set after training on the "
               "train+valid sets by {:} epochs. The per-time and total-time indicate the per epoch and total time "
               "costs, respectively.",
}
_TIME_NONE, _TIME_METRIC, _TIME_UNRECORDED = 0, 1, 2


def more_info_sets(dataset: str) -> list[tuple[str, str, bool]]:
    """get_more_info's (key prefix, split, required) in its output order, as nats_bench defines them per dataset."""
    if dataset == "cifar10-valid":
        return [("train", "train", True), ("valid", "x-valid", True), ("test", "ori-test", False)]
    if dataset == "cifar10":
        return [("train", "train", True), ("valid", "x-valid", False), ("test", "ori-test", False)]
    return [("train", "train", True), ("valid", "x-valid", False), ("test", "x-test", False),
            ("valtest", "ori-test", False)]


class Plan:
    """One (dataset, hp): its seeds, the compiled plan, and which set each split name is."""

    __slots__ = ("dataset", "hp", "runs", "seeds", "positions", "uniform", "c", "set_index", "has_eval_times",
                 "epochs", "missing_required", "eval_names")

    def __init__(self, ctx: TableContext, dataset: str, hp: str, raw_hp: Any) -> None:
        runs = ctx.runs(dataset, hp)
        first = runs[0]
        for run in runs[1:]:
            if run.metrics != first.metrics or run.scalars != first.scalars or run.epochs != first.epochs:
                raise DataError(f"{ctx.table.path}: the seeds of {dataset} hp {hp!r} record different metrics; the "
                                "NATS-Bench facade needs them alike (re-import the table)")
        self.dataset, self.hp, self.runs, self.epochs = dataset, hp, runs, first.epochs
        self.seeds = [r.seed for r in runs]
        self.positions = list(range(len(runs)))
        masks = [ctx.recorded_by(r) for r in runs]
        self.uniform = all(np.array_equal(masks[0], m) for m in masks[1:])
        metric = {m: i for i, m in enumerate(first.metrics)}
        eval_names = list(first.eval_names) or list(dict.fromkeys(
            split_of(m)[0] for m in first.metrics if not m.startswith("train-")))
        self.eval_names = [n for n in eval_names if f"{n}-loss" in metric and f"{n}-accuracy" in metric]
        self.has_eval_times = any(f"{n}-time" in metric for n in self.eval_names)
        sets, self.set_index = [], {}
        for name in ["train", *self.eval_names]:
            if f"{name}-loss" not in metric or f"{name}-accuracy" not in metric:
                continue
            if name == "train":
                mode = _TIME_METRIC if "train-time" in metric else _TIME_NONE
            else:
                mode = (_TIME_METRIC if f"{name}-time" in metric else _TIME_UNRECORDED) if self.has_eval_times \
                    else _TIME_NONE
            self.set_index[name] = len(sets)
            sets.append((metric[f"{name}-loss"], metric[f"{name}-accuracy"], metric.get(f"{name}-time", -1), mode,
                         name == "train"))
        if "train" not in self.set_index:
            raise DataError(f"{ctx.table.path}: {dataset} hp {hp!r} records no train loss/accuracy, which every "
                            "NATS-Bench query reads")
        self.missing_required = None
        outputs = []
        for prefix, split, required in more_info_sets(dataset):
            if split in self.set_index:
                outputs.append((self.set_index[split], prefix, required))
            elif required and self.missing_required is None:
                self.missing_required = f"{dataset} hp {hp!r} records no {split} results"
        scalar = {s: i for i, s in enumerate(first.scalars)}
        comment = COMMENTS[dataset].format(raw_hp) if dataset in COMMENTS else None
        self.c = _table.NatsPlan(
            [ctx.table.run_view(dataset, hp, s) for s in self.seeds], self.seeds, self.epochs, sets, outputs,
            "comment", comment, scalar.get("flops", -1), scalar.get("params", -1), scalar.get("latency", -1),
            [(n, metric.get(f"{n}-time", -1)) for n in self.eval_names])

    def positions_of(self, arch: int) -> list[int]:
        """Positions of the seeds that record `arch` (the plan's seeds when every run records the same archs)."""
        if self.uniform:
            return self.positions
        recorded = self.c.recorded(arch)
        return [self.seeds.index(s) for s in recorded]

    def seeds_of(self, arch: int) -> list[int]:
        """The seeds that record `arch`, ascending (NATS-Bench's dataset_seed[dataset])."""
        return [self.seeds[p] for p in self.positions_of(arch)]

    def seed_position(self, seed: Any, arch: int) -> int:
        """The position of `seed`; ValueError as nats_bench's when the arch has no such seed."""
        seeds = self.seeds_of(arch)
        if seed not in seeds:
            raise InputError(f"can not find random seed ({seed}) from {seeds}")
        return self.seeds.index(seed)

    def set_of(self, setname: str) -> int:
        """The set index of a split name ('valid' means 'x-valid'), with nats_bench's error when unrecorded."""
        name = "x-valid" if setname == "valid" else setname
        index = self.set_index.get(name)
        if index is None:
            if name != "train" and self.has_eval_times:
                raise InputError(f"{name}@* not in the eval times of {self.dataset} hp {self.hp!r}")
            raise NATSKeyError(f"{name} results are not recorded for {self.dataset} hp {self.hp!r}")
        return index


class TableContext:
    """An nb360 Table with the facts and compiled plans the NATS facade reads (built lazily, then cached)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.space = for_table(table.space)
        self.num_archs = table.num_archs
        layout = table.source_layout
        tasks = table.tasks
        self.datasets = [d for d in layout.get("datasets", []) if d in tasks]
        self.datasets += [t for t in tasks if t not in self.datasets]
        all_hps = list(dict.fromkeys(r.hp for r in table.runs))
        self.hps = [h for h in layout.get("hps", []) if h in all_hps]
        self.hps += [h for h in all_hps if h not in self.hps]
        self._runs: dict[tuple[str, str], list[RunInfo]] = {}
        for run in table.runs:
            self._runs.setdefault((run.task, run.hp), []).append(run)
        for runs in self._runs.values():
            runs.sort(key=lambda r: r.seed)
        self._plans: dict[tuple[str, str], Plan] = {}
        self._masks: dict[tuple[str, str, int], np.ndarray] = {}
        self._hp_masks: dict[str, np.ndarray] = {}
        self._recorded: np.ndarray | None = None
        self._arch_strs: list[str] | None = None
        self._str2index: dict[str, int] | None = None

    # ------------------------------------------------------------------ arch strings
    @property
    def arch_strs(self) -> list[str]:
        """Every arch string in index order (NATS-Bench's meta_archs), built once."""
        if self._arch_strs is None:
            self._arch_strs = self.space.all_arch_strs()
        return self._arch_strs

    @property
    def str2index(self) -> dict[str, int]:
        """Arch string -> index (NATS-Bench's archstr2index), built once."""
        if self._str2index is None:
            self._str2index = {a: i for i, a in enumerate(self.arch_strs)}
        return self._str2index

    # ------------------------------------------------------------------ what is recorded
    def runs(self, dataset: str, hp: str) -> list[RunInfo]:
        """The runs (one per seed, ascending) of (dataset, hp); NATSKeyError naming what exists otherwise."""
        runs = self._runs.get((dataset, hp))
        if runs is None:
            if dataset not in self.datasets:
                raise NATSKeyError(f"dataset {dataset!r} is not in this table; it holds {', '.join(self.datasets)}")
            recorded = [h for h in self.hps if (dataset, h) in self._runs]
            raise NATSKeyError(f"hp {hp!r} is not recorded for {dataset}; recorded: {', '.join(map(repr, recorded))}")
        return runs

    def recorded_by(self, run: RunInfo) -> np.ndarray:
        """Which archs one run records (bool, one per arch)."""
        key = (run.task, run.hp, run.seed)
        mask = self._masks.get(key)
        if mask is None:
            mask = np.zeros(self.num_archs, dtype=bool)
            mask[self.table.archs(task=run.task, hp=run.hp, seed=run.seed)] = True
            self._masks[key] = mask
        return mask

    def recorded_in_hp(self, hp: str) -> np.ndarray:
        """Which archs any run of fidelity `hp` records."""
        mask = self._hp_masks.get(hp)
        if mask is None:
            mask = np.zeros(self.num_archs, dtype=bool)
            for (_, run_hp), runs in self._runs.items():
                if run_hp == hp:
                    for run in runs:
                        mask |= self.recorded_by(run)
            self._hp_masks[hp] = mask
        return mask

    @property
    def recorded(self) -> np.ndarray:
        """Which archs any run records."""
        if self._recorded is None:
            mask = np.zeros(self.num_archs, dtype=bool)
            for hp in self.hps:
                mask |= self.recorded_in_hp(hp)
            self._recorded = mask
        return self._recorded

    def arch_hps(self, arch: int) -> list[str]:
        """The fidelities that record `arch`, in the source's order."""
        return [hp for hp in self.hps if self.recorded_in_hp(hp)[arch]]

    def arch_datasets(self, arch: int, hp: str) -> dict[str, list[int]]:
        """{dataset: seeds} recording `arch` at `hp`, in the source's dataset order (ArchResults.dataset_seed)."""
        out = {}
        for dataset in self.datasets:
            if (dataset, hp) in self._runs:
                seeds = self.plan(dataset, hp).seeds_of(arch)
                if seeds:
                    out[dataset] = seeds
        return out

    # ------------------------------------------------------------------ plans and network facts
    def plan(self, dataset: str, hp: Any) -> Plan:
        """The compiled plan of (dataset, hp); hp may be given as an int or str."""
        key = (dataset, hp)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = Plan(self, dataset, str(hp), hp)
        return plan

    def network(self, dataset: str, hp: str) -> dict[str, Any]:
        """The network facts the records share (channel, num_cells, class_num; size space: name, genotype)."""
        return dict(self.runs(dataset, hp)[0].protocol.get("network") or {})

    def arch_config(self, arch: int, dataset: str, hp: str) -> dict[str, Any]:
        """A record's arch_config, in the released files' key order."""
        net = self.network(dataset, hp)
        arch_str = self.arch_strs[arch]
        if self.table.space == "sss":
            return {"name": net.get("name", "infer.shape.tiny"), "channels": arch_str, "arch_str": arch_str,
                    "genotype": net.get("genotype"), "class_num": net.get("class_num")}
        return {"channel": net.get("channel"), "num_cells": net.get("num_cells"), "arch_str": arch_str,
                "class_num": net.get("class_num")}
