"""Where shards run: in local worker processes, or as Ray tasks on a cluster (a registry by name)."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import InputError
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


RAY_CONNECT_TIMEOUT = 30.0  # seconds to reach a remote Ray cluster before giving up with a message


def check_ray_address(address: str, timeout: float = RAY_CONNECT_TIMEOUT) -> None:
    """InputError naming the fix unless a TCP connection to the Ray address opens within `timeout` seconds.

    ray.init(address=...) retries an unreachable head node for many minutes without a word; this
    probe turns that into a prompt error. 'auto' and 'local' are Ray's own and are not probed.
    """
    import socket

    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[1] if "://" in address else address
    host, _, port = target.rpartition(":")
    default = 10001 if address.startswith("ray://") else 6379
    if not host:
        host, port = target, str(default)
    if not port.isdigit():
        raise InputError(f"--ray-address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:10001")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise InputError(f"cannot reach the Ray cluster at {address} within {timeout:.0f} s ({exc.strerror or exc}): "
                         "check the address and that the head node runs (`ray status` there), or drop --ray-address "
                         "(and RAY_ADDRESS) to start a local Ray instance") from None


def run_ray(spec_dict: dict[str, Any], shards: list[Shard], workers: int, address: str | None = None,
            retries: int = 2, connect_timeout: float = RAY_CONNECT_TIMEOUT) -> Iterator[Result]:
    """Run shards as Ray tasks (CPU/GPU requests from the spec), retried on failure; yield as they finish.

    Connects to `address` (or $RAY_ADDRESS) when given, else starts a local Ray instance with
    `workers` CPUs.
    """
    try:
        import ray
    except ImportError:
        raise InputError("the ray executor needs Ray: `pip install 'ray[default]'` (or use --executor local)") from None
    address = address or os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        if address:
            check_ray_address(address, connect_timeout)
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    gpus = 1 if str(spec_dict.get("device", "cpu")).startswith("cuda") else 0
    task = ray.remote(num_cpus=spec_dict.get("threads", 1), num_gpus=gpus, max_retries=retries,
                      retry_exceptions=True)(run_shard)
    try:
        pending = {task.remote(spec_dict, list(s.archs), s.seed): s for s in shards}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            yield pending.pop(ref), ray.get(ref)
    finally:
        if started:
            ray.shutdown()


EXECUTORS: dict[str, Callable[..., Iterator[Result]]] = {"local": run_local, "ray": run_ray}
