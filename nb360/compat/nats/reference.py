"""nats_bench's semantics over the facade's result objects: the slow path and the fast path's oracle.

`more_info` answers get_more_info from an ArchResults (used when a caller has built and possibly
changed `api.arch2infos_dict[index]`); `find_best` scans archs vectorised over the table, falling
back to the objects for archs a caller has built. Tests run both paths against nats_bench.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from ...errors import InputError
from .context import COMMENTS, more_info_sets
from .errors import NATSKeyError


def more_info(results: Any, dataset: str, iepoch: int | None, hp: Any, is_random: bool | int) -> dict[str, Any]:
    """get_more_info of one ArchResults, as nats_bench computes it."""
    if isinstance(is_random, bool) and is_random:
        is_random = random.choice(results.get_dataset_seeds(dataset))
    out: dict[str, Any] = {}
    total = None
    for prefix, split, required in more_info_sets(dataset):
        try:
            info = results.get_metrics(dataset, split, iepoch=iepoch, is_random=is_random)
        except (KeyError, ValueError):
            if required:
                raise
            continue
        if prefix == "train":
            total = info["iepoch"] + 1
        out[f"{prefix}-loss"] = info["loss"]
        out[f"{prefix}-accuracy"] = info["accuracy"]
        out[f"{prefix}-per-time"] = info["all_time"] / total if info["all_time"] is not None else None
        out[f"{prefix}-all-time"] = info["all_time"]
        if prefix == "train" and dataset in COMMENTS:
            out["comment"] = COMMENTS[dataset].format(hp)
    return out


def _legacy_mean(values: np.ndarray, recorded: np.ndarray, seeds: list[int]) -> np.ndarray:
    """Per arch: the seed mean, or seed 888's value where the seeds disagree in the 5th decimal (nats_bench 1.6)."""
    count = recorded.sum(axis=0)
    total = np.where(recorded, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    spread = np.where(recorded, values, np.nan)
    differ = np.flatnonzero((count > 1) & (np.nanmax(spread, axis=0) != np.nanmin(spread, axis=0)))
    for j in differ:
        own = [float(v) for v, r in zip(values[:, j], recorded[:, j]) if r]
        if len({f"{x:.5f}" for x in own}) > 1:
            if 888 not in seeds or not recorded[seeds.index(888), j]:
                raise InputError("888 is not in list")
            mean[j] = values[seeds.index(888), j]
    return mean


def find_best(api: Any, candidates: np.ndarray, dataset: str, setname: str, flop_max: float | None,
              param_max: float | None, hp: str) -> tuple[int, float | None]:
    """The first arch (in `candidates` order) with the highest seed-mean accuracy within the limits."""
    if any(int(i) in api._cache for i in candidates):
        return _find_best_objects(api, candidates, dataset, setname, flop_max, param_max, hp)
    if candidates.size == 0:
        return -1, None
    ctx = api._ctx
    without_hp = candidates[~ctx.recorded_in_hp(hp)[candidates]]
    if without_hp.size:
        raise NATSKeyError(f"arch {int(without_hp[0])} has no hp {hp!r}")
    plan = ctx.plan(dataset, hp)
    split = "x-valid" if setname == "valid" else setname
    plan.set_of(setname)
    recorded = np.stack([ctx.recorded_by(run)[candidates] for run in plan.runs])  # (seeds, candidates)
    if not recorded.any(axis=0).all():
        raise NATSKeyError(f"arch {int(candidates[~recorded.any(axis=0)][0])} has no {dataset} records at hp {hp!r}")
    table = ctx.table

    def per_seed(fn: Any) -> np.ndarray:
        return np.stack([fn(seed).astype(np.float64) for seed in plan.seeds])

    acc = per_seed(lambda s: table.query_batch(candidates, f"{split}-accuracy", -1, seed=s, hp=hp, task=dataset,
                                               missing="nan"))
    if np.isnan(acc[recorded]).any():
        raise NATSKeyError(f"{split}-accuracy at the last epoch is not recorded for some archs of {dataset}")
    accuracy = np.where(recorded, acc, 0.0).sum(axis=0) / recorded.sum(axis=0)
    keep = np.ones(candidates.size, dtype=bool)
    for limit, name in ((flop_max, "flops"), (param_max, "params")):
        if limit is not None:
            values = per_seed(lambda s, n=name: table.scalar_batch(n, candidates, seed=s, hp=hp, task=dataset))
            keep &= ~(_legacy_mean(values, recorded, plan.seeds) > limit)
    if not keep.any():
        return -1, None
    pick = int(np.argmax(np.where(keep, accuracy, -np.inf)))
    return int(candidates[pick]), float(accuracy[pick])


def _find_best_objects(api: Any, candidates: np.ndarray, dataset: str, setname: str, flop_max: float | None,
                       param_max: float | None, hp: str) -> tuple[int, float | None]:
    best, highest = -1, None
    for index in candidates.tolist():
        results = api._results(index, hp)
        cost = results.get_compute_costs(dataset)
        if flop_max is not None and cost["flops"] > flop_max or param_max is not None and cost["params"] > param_max:
            continue
        accuracy = results.get_metrics(dataset, setname)["accuracy"]
        if best == -1 or highest < accuracy:
            best, highest = index, accuracy
    return best, highest
