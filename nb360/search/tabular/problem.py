"""A tabular search problem: the per-arch arrays a search needs, read once from an nb360 Table.

NATS-Bench's query model (`simulate_train_eval`, nb201-table.md §8): a query of arch a at epoch e
of the search fidelity draws one of the seeds recording a, returns its validation value at e and
charges ``train time of epochs 0..e + mean eval time of epochs 0..e`` (NATS's `train-all-time +
valid-per-time`; `Table.simulate_train_eval` charges the eval time of epoch e, identical when the
recorded eval time is the same every epoch, as in the released files). Unrecorded times count 0,
as in `Table.simulate_train_eval`. The final-fidelity metric of an arch is its seed mean at the
last epoch of the final fidelity (NATS's `is_random=False`).

Everything is precomputed into numpy arrays over the 15,625 indices so the algorithms run
vectorised over repeats. Only archs recorded by both the search and the final run can be drawn;
on a full table that is the whole space and sampling and mutation are exactly the reference's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import InputError
from ...space import nb201
from ...table import Table
from ...table.schema import metric_direction


@dataclass
class _Fidelity:
    """Per-seed values and costs of every arch at one epoch of the search fidelity."""

    values: np.ndarray  # (S, A) float64, NaN where the seed does not record the arch
    costs: np.ndarray  # (S, A) float64 simulated seconds of one query
    seed_slots: np.ndarray  # (A, S) int64: seeds recording the arch first
    num_seeds: np.ndarray  # (A,) int64: how many seeds record the arch


@dataclass
class TabularProblem:
    """The search space as arrays: what a query returns and costs, and each arch's final-fidelity metric."""

    table: Table
    task: str
    search_hp: str
    search_epochs: int
    search_epoch: int  # the epoch queried by methods without a fidelity schedule (0-based)
    search_metric: str
    search_mode: str  # "max" or "min"
    eval_split: str
    final_task: str
    final_hp: str
    final_metric: str
    final_mode: str
    final_values: np.ndarray  # (A,) seed mean at the last epoch of final_hp; NaN where not recorded
    recorded: np.ndarray  # (K,) indices that can be queried (ascending)
    is_recorded: np.ndarray  # (A,) bool
    neighbours: np.ndarray  # (A, 24) recorded one-edge neighbours first, -1 after
    num_neighbours: np.ndarray  # (A,)
    op_ids: np.ndarray  # (A, 6) uint8
    index_of_code: np.ndarray  # (5**6,) base-5 code of the op ids -> index
    final_table: Table | None = None
    _fidelities: dict[int, _Fidelity] = field(default_factory=dict, repr=False)
    _search_runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list, repr=False)
    _metric_rows: dict[str, int] = field(default_factory=dict, repr=False)
    _final_seeds: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _mutation: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_table(cls, table: Table | str | os.PathLike, *, task: str | None = None, search_hp: str | None = None,
                   search_epoch: int = -1, search_metric: str | None = None,
                   final_table: Table | str | os.PathLike | None = None,
                   final_task: str | None = None, final_hp: str | None = None,
                   final_metric: str | None = None) -> TabularProblem:
        """Read the arrays for searching `task` of `table` (the final metric from `final_table`, default the same).

        Defaults follow NAS-Bench-360's runs (nb201-table.md §8): search on the 12-epoch fidelity when
        the table has it (else the highest), at its last epoch, by the run's validation split
        accuracy; report the 200-epoch (highest) fidelity's test accuracy (x-test where recorded,
        else ori-test), averaged over seeds.
        """
        table = table if isinstance(table, Table) else Table.open(table)
        if table.space != "nb201":
            raise InputError(f"tabular search runs on NB201-space tables, not {table.space!r}")
        task = table.task_name(task)
        hps = table.hps(task)
        if search_hp is None:
            search_hp = "12" if "12" in hps else max(hps, key=_hp_key)
        search_hp = str(search_hp)
        if search_hp not in hps:
            raise InputError(f"search fidelity hp {search_hp!r} is not recorded for {task}; recorded: {', '.join(hps)}")
        ftable = table if final_table is None else (final_table if isinstance(final_table, Table)
                                                    else Table.open(final_table))
        final_task = ftable.task_name(final_task if final_task is not None else
                                      (task if task in ftable.tasks else None))
        fhps = ftable.hps(final_task)
        final_hp = str(final_hp) if final_hp is not None else max(fhps, key=_hp_key)
        if final_hp not in fhps:
            raise InputError(f"final fidelity hp {final_hp!r} is not recorded for {final_task}; recorded: "
                             f"{', '.join(fhps)}")

        search_runs = [r for r in table.runs if r.task == task and r.hp == search_hp]
        eval_split = search_runs[0].valid_split or "ori-test"
        metrics = table.metrics(search_hp, task)
        search_metric = search_metric or f"{eval_split}-accuracy"
        if search_metric not in metrics:
            raise InputError(f"search metric {search_metric!r} is not recorded for {task} hp {search_hp!r}; "
                             f"recorded: {', '.join(metrics)}")
        if "train-time" not in metrics:
            raise InputError(f"{task} hp {search_hp!r} records no train-time, so queries cannot be charged "
                             "simulated time; give a query budget (max_queries) instead of seconds")
        epochs = table.epochs(search_hp, task)
        if not -epochs <= search_epoch < epochs:
            raise InputError(f"search epoch {search_epoch} is out of range: {task} hp {search_hp!r} has epochs "
                             f"0..{epochs - 1} (or -1 for the last)")
        search_epoch = search_epoch % epochs

        fmetrics = ftable.metrics(final_hp, final_task)
        if final_metric is None:
            final_metric = next((m for m in ("x-test-accuracy", "ori-test-accuracy") if m in fmetrics), None)
            if final_metric is None:
                raise InputError(f"{final_task} hp {final_hp!r} records no test accuracy; pass final_metric (one "
                                 f"of {', '.join(fmetrics)})")
        elif final_metric not in fmetrics:
            raise InputError(f"final metric {final_metric!r} is not recorded for {final_task} hp {final_hp!r}; "
                             f"recorded: {', '.join(fmetrics)}")
        final_values = ftable.query_batch(np.arange(nb201.NUM_ARCHS), final_metric, -1, hp=final_hp,
                                          task=final_task, missing="nan").astype(np.float64)

        searchable = np.zeros(nb201.NUM_ARCHS, dtype=bool)
        runs = []
        for run in search_runs:
            ids, curves, present = table.arrays(search_hp, task, run.seed)
            runs.append((ids, curves, present))
            m = metrics.index(search_metric)
            searchable[ids[present[:, m, search_epoch]]] = True
        is_recorded = searchable & ~np.isnan(final_values)
        recorded = np.flatnonzero(is_recorded)
        if recorded.size == 0:
            raise InputError(f"no arch records both {search_metric} ({task} hp {search_hp!r}) and {final_metric} "
                             f"({final_task} hp {final_hp!r})")

        op_ids = nb201.op_id_array()
        codes = op_ids.astype(np.int64) @ (nb201.NUM_OPS ** np.arange(nb201.NUM_EDGES - 1, -1, -1))
        index_of_code = np.empty(nb201.NUM_ARCHS, dtype=np.int64)
        index_of_code[codes] = np.arange(nb201.NUM_ARCHS)
        neighbours, num_neighbours = _neighbour_table(op_ids, codes, index_of_code, is_recorded)
        problem = cls(table=table, task=task, search_hp=search_hp, search_epochs=epochs, search_epoch=search_epoch,
                      search_metric=search_metric, search_mode=metric_direction(search_metric), eval_split=eval_split,
                      final_task=final_task, final_hp=final_hp, final_metric=final_metric,
                      final_mode=metric_direction(final_metric), final_values=final_values, recorded=recorded,
                      is_recorded=is_recorded, neighbours=neighbours, num_neighbours=num_neighbours, op_ids=op_ids,
                      index_of_code=index_of_code, final_table=None if ftable is table else ftable)
        problem._search_runs = runs
        problem._metric_rows = {name: i for i, name in enumerate(metrics)}
        return problem

    # ------------------------------------------------------------------ per-epoch arrays
    def fidelity(self, epoch: int) -> _Fidelity:
        """Values and costs of every arch at `epoch` (0-based) of the search fidelity (cached)."""
        epoch = int(epoch)
        if not 0 <= epoch < self.search_epochs:
            raise InputError(f"epoch {epoch} is out of range 0..{self.search_epochs - 1}")
        cached = self._fidelities.get(epoch)
        if cached is not None:
            return cached
        S, A = len(self._search_runs), nb201.NUM_ARCHS
        values = np.full((S, A), np.nan)
        costs = np.full((S, A), np.nan)
        rows = self._metric_rows
        m_value, m_train = rows[self.search_metric], rows["train-time"]
        m_eval = rows.get(f"{self.eval_split}-time")
        for s, (ids, curves, present) in enumerate(self._search_runs):
            ok = present[:, m_value, epoch] & self.is_recorded[ids]
            values[s, ids[ok]] = curves[ok, m_value, epoch]
            train = np.where(present[:, m_train, :epoch + 1], curves[:, m_train, :epoch + 1], 0.0).sum(axis=1,
                                                                                                   dtype=np.float64)
            cost = train
            if m_eval is not None:
                recorded_eval = present[:, m_eval, :epoch + 1]
                total = np.where(recorded_eval, curves[:, m_eval, :epoch + 1], 0.0).sum(axis=1, dtype=np.float64)
                cost = cost + np.where(recorded_eval.any(axis=1), total / (epoch + 1), 0.0)
            costs[s, ids[ok]] = cost[ok]
        has = ~np.isnan(values)  # (S, A)
        order = np.argsort(~has.T, axis=1, kind="stable")  # recording seeds first
        fid = _Fidelity(values=values, costs=costs, seed_slots=order.astype(np.int64),
                        num_seeds=has.sum(axis=0).astype(np.int64))
        self._fidelities[epoch] = fid
        return fid

    def query(self, rng: np.random.Generator, archs: np.ndarray, epoch: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """(values, costs) of a batch of queries, each at a random recording seed (NATS's is_random=True)."""
        fid = self.fidelity(self.search_epoch if epoch is None else epoch)
        archs = np.asarray(archs, dtype=np.int64)
        n = fid.num_seeds[archs]
        if (n == 0).any():
            bad = int(archs[n == 0][0])
            raise InputError(f"arch {bad} is not recorded at epoch {epoch} of {self.task} hp {self.search_hp!r}")
        if fid.values.shape[0] == 1:
            seeds = np.zeros(archs.shape, dtype=np.int64)
        else:
            seeds = fid.seed_slots[archs, (rng.random(archs.shape) * n).astype(np.int64)]
        return fid.values[seeds, archs], fid.costs[seeds, archs]

    def final_by_seed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Final-fidelity values per seed: (S, A) values (NaN where a seed lacks the arch), (A, S) recording seeds
        first, (A,) how many seeds record each arch (cached)."""
        if self._final_seeds is None:
            ftable = self.final_table or self.table
            seeds = ftable.seeds(self.final_hp, self.final_task)
            values = np.stack([ftable.query_batch(np.arange(nb201.NUM_ARCHS), self.final_metric, -1, seed=s,
                                                  hp=self.final_hp, task=self.final_task, missing="nan")
                               for s in seeds]).astype(np.float64)
            has = ~np.isnan(values)
            self._final_seeds = (values, np.argsort(~has.T, axis=1, kind="stable"), has.sum(axis=0))
        return self._final_seeds

    def final_random_seed(self, archs: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The final metric of `archs` at one of their recording seeds, picked by uniforms `u` in [0, 1) (NATS's
        get_more_info with is_random=True); NaN for arch -1."""
        values, slots, counts = self.final_by_seed()
        archs = np.asarray(archs, dtype=np.int64)
        safe = np.maximum(archs, 0)
        n = np.maximum(counts[safe], 1)
        seed = slots[safe, np.minimum((u * n).astype(np.int64), n - 1)]
        return np.where(archs >= 0, values[seed, safe], np.nan)

    # ------------------------------------------------------------------ space helpers
    def score(self, values: np.ndarray) -> np.ndarray:
        """Search values as scores to maximise (negated for a minimised metric)."""
        return values if self.search_mode == "max" else -values

    def random_archs(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """Uniformly random queryable archs (uniform over the space on a full table)."""
        return self.recorded[rng.integers(0, self.recorded.size, size)]

    def mutate(self, rng: np.random.Generator, archs: np.ndarray) -> np.ndarray:
        """One random edge set to a different op (uniform over the 24 neighbours; recorded ones on partial tables)."""
        archs = np.asarray(archs, dtype=np.int64)
        n = self.num_neighbours[archs]
        pick = (rng.random(archs.shape) * np.maximum(n, 1)).astype(np.int64)
        out = self.neighbours[archs, pick]
        isolated = n == 0
        if isolated.any():  # no recorded neighbour (partial tables only): a random recorded arch
            out[isolated] = self.random_archs(rng, int(isolated.sum()))
        return out

    def recorded_or_random(self, rng: np.random.Generator, archs: np.ndarray) -> np.ndarray:
        """`archs`, with those the table does not record (partial tables) replaced by random recorded ones."""
        archs = np.asarray(archs, dtype=np.int64).copy()
        missing = ~self.is_recorded[archs]
        if missing.any():
            archs[missing] = self.random_archs(rng, int(missing.sum()))
        return archs

    def mutate_by_node(self, rng: np.random.Generator, archs: np.ndarray) -> np.ndarray:
        """AutoDL's `mutate_topology_func`: a node uniformly, one of its incoming edges uniformly, a different op
        uniformly (edge probabilities 1/3, 1/6, 1/6, 1/9, 1/9, 1/9). On partial tables, among recorded children
        with the same relative probabilities (a random recorded arch when none is)."""
        if self._mutation is None:
            self._mutation = _node_edge_mutation(self.op_ids, self.index_of_code, self.is_recorded)
        children, cdf = self._mutation
        archs = np.asarray(archs, dtype=np.int64)
        rows = cdf[archs]
        pick = (rng.random(archs.shape)[..., None] * rows[..., -1:] >= rows).sum(axis=-1)
        out = np.take_along_axis(children[archs], np.minimum(pick, rows.shape[-1] - 1)[..., None], axis=-1)[..., 0]
        isolated = rows[..., -1] == 0
        if isolated.any():
            out[isolated] = self.random_archs(rng, int(isolated.sum()))
        return out

    def archs_from_ops(self, ops: np.ndarray) -> np.ndarray:
        """Indices of archs given as (..., 6) op ids."""
        codes = np.asarray(ops, dtype=np.int64) @ (nb201.NUM_OPS ** np.arange(nb201.NUM_EDGES - 1, -1, -1))
        return self.index_of_code[codes]

    def fidelity_epochs(self, min_budget: float, max_budget: float, eta: float) -> tuple[np.ndarray, np.ndarray]:
        """hpbandster's geometric budgets between min and max (in epochs) and the epoch each queries (int(b) - 1)."""
        if not (0 < min_budget <= max_budget <= self.search_epochs):
            raise InputError(f"budgets must satisfy 0 < min ({min_budget}) <= max ({max_budget}) <= "
                             f"{self.search_epochs} epochs of {self.task} hp {self.search_hp!r}")
        if eta <= 1:
            raise InputError(f"eta must be > 1, got {eta}")
        levels = -int(np.log(min_budget / max_budget) / np.log(eta)) + 1
        budgets = max_budget * np.power(eta, -np.linspace(levels - 1, 0, levels))
        epochs = np.maximum(budgets.astype(np.int64) - 1, 0)
        return budgets, epochs

    def describe(self) -> dict[str, Any]:
        """The problem's settings, for run records."""
        return {"table": self.table.path, "task": self.task, "search_hp": self.search_hp,
                "search_epoch": self.search_epoch, "search_metric": self.search_metric,
                "search_mode": self.search_mode, "eval_split": self.eval_split,
                "final_table": (self.final_table or self.table).path, "final_task": self.final_task,
                "final_hp": self.final_hp, "final_metric": self.final_metric, "final_mode": self.final_mode,
                "queryable_archs": int(self.recorded.size),
                "seeds": [int(s) for s in self.table.seeds(self.search_hp, self.task)]}


def _hp_key(hp: str) -> tuple[int, str]:
    return (int(hp), hp) if hp.isdigit() else (-1, hp)


# AutoDL's mutation picks node 1, 2 or 3 (1/3 each), then one of its 1, 2 or 3 incoming edges uniformly.
NODE_EDGE_PROBABILITY = np.array([1 / 3, 1 / 6, 1 / 6, 1 / 9, 1 / 9, 1 / 9])


def _node_edge_mutation(op_ids: np.ndarray, index_of_code: np.ndarray,
                        is_recorded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, 24) children (edge by edge, each other op) and the cumulative probability of each under the node-then-edge
    rule, zero for unrecorded children (so sampling draws recorded ones with the same relative weights)."""
    powers = nb201.NUM_OPS ** np.arange(nb201.NUM_EDGES - 1, -1, -1)
    codes = op_ids.astype(np.int64) @ powers
    children, weights = [], []
    for e in range(nb201.NUM_EDGES):
        current = op_ids[:, e].astype(np.int64)
        for shift in range(1, nb201.NUM_OPS):
            child = index_of_code[codes + ((current + shift) % nb201.NUM_OPS - current) * powers[e]]
            children.append(child)
            weights.append(np.where(is_recorded[child], NODE_EDGE_PROBABILITY[e] / (nb201.NUM_OPS - 1), 0.0))
    return np.stack(children, axis=1), np.cumsum(np.stack(weights, axis=1), axis=1)


def _neighbour_table(op_ids: np.ndarray, codes: np.ndarray, index_of_code: np.ndarray,
                     is_recorded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A, 24) one-edge neighbours of every arch with the recorded ones first (edge by edge), and their count."""
    powers = nb201.NUM_OPS ** np.arange(nb201.NUM_EDGES - 1, -1, -1)
    cols = []
    for e in range(nb201.NUM_EDGES):
        current = op_ids[:, e].astype(np.int64)
        for shift in range(1, nb201.NUM_OPS):
            new = (current + shift) % nb201.NUM_OPS
            cols.append(index_of_code[codes + (new - current) * powers[e]])
    nbrs = np.stack(cols, axis=1)  # (A, 24)
    ok = is_recorded[nbrs]
    order = np.argsort(~ok, axis=1, kind="stable")
    nbrs = np.take_along_axis(nbrs, order, axis=1)
    ok = np.take_along_axis(ok, order, axis=1)
    return np.where(ok, nbrs, -1), ok.sum(axis=1).astype(np.int64)
