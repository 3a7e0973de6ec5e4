"""Where shards run: in local worker processes, or as Ray tasks on a cluster (a registry by name)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import InputError
from ..ray_cluster import RAY_CONNECT_TIMEOUT, ray_session
from .shards import Shard
from .worker import run_shard

Result = tuple[Shard, list[dict[str, Any]]]


def run_local(spec_dict: dict[str, Any], shards: list[Shard], workers: int) -> Iterator[Result]:
    """Run shards in `workers` spawned processes (in this process when workers == 1); yield as they finish."""
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    if workers == 1:
        for shard in shards:
            yield shard, run_shard(spec_dict, list(shard.archs), shard.seed)
        return
    # spawn, not fork: the parent may hold torch threads, which fork does not copy safely
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_shard, spec_dict, list(s.archs), s.seed): s for s in shards}
        try:
            for future in cf.as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def run_ray(spec_dict: dict[str, Any], shards: list[Shard], workers: int, address: str | None = None,
            retries: int = 2, connect_timeout: float = RAY_CONNECT_TIMEOUT) -> Iterator[Result]:
    """Run shards as Ray tasks (CPU/GPU requests from the spec), retried on failure; yield as they finish.

    Connects to `address` (or $RAY_ADDRESS) when given, else starts a local Ray instance with
    `workers` CPUs.
    """
    with ray_session(address, workers, connect_timeout=connect_timeout) as ray:
        gpus = 1 if str(spec_dict.get("device", "cpu")).startswith("cuda") else 0
        task = ray.remote(num_cpus=spec_dict.get("threads", 1), num_gpus=gpus, max_retries=retries,
                          retry_exceptions=True)(run_shard)
        pending = {task.remote(spec_dict, list(s.archs), s.seed): s for s in shards}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            yield pending.pop(ref), ray.get(ref)


EXECUTORS: dict[str, Callable[..., Iterator[Result]]] = {"local": run_local, "ray": run_ray}
