"""Where a suite's units run: in this process, in local worker processes, or one unit per Ray task on a cluster."""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..ray_cluster import ray_session
from .unit import _write_unit, run_unit, unit_dir

Unit = tuple[str, str, int]  # (method, task, seed)
POLL_S = 5.0  # how often the Ray executor looks at running units (timeouts, progress)


def run_local(spec: dict[str, Any], out: str, units: list[Unit], workers: int,
              progress: bool) -> Iterator[dict[str, Any]]:
    """Run units here (workers == 1) or in `workers` spawned processes; yield each unit.json as it finishes."""
    if workers == 1:
        for method, task, seed in units:
            yield run_unit(spec, out, method, task, seed, progress=progress)
        return
    # spawn, not fork: torch threads and Ray do not survive a fork
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_unit, spec, out, m, t, s): (m, t, s) for m, t, s in units}
        try:
            for future in cf.as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _started(out: str, unit: Unit) -> float | None:
    marker = unit_dir(Path(out), *unit) / "running.json"
    try:
        return float(json.loads(marker.read_text())["started"])
    except (OSError, ValueError, KeyError):
        return None


def _failed(out: str, unit: Unit, error: str) -> dict[str, Any]:
    method, task, seed = unit
    path = unit_dir(Path(out), method, task, seed)
    path.mkdir(parents=True, exist_ok=True)
    payload = {"method": method, "task": task, "seed": seed, "status": "failed", "error": error, "search": None,
               "evaluate": None, "seconds": {}}
    _write_unit(path, payload)
    return payload


def resources(spec: dict[str, Any], unit: Unit) -> dict[str, int]:
    """What a unit's Ray task asks for: the suite's threads as CPUs and, with a CUDA device, one GPU; an ASHA unit
    nothing (its trials are Ray actors that ask for a CPU or GPU each)."""
    if unit[0] == "wrn-asha":
        return {"num_cpus": 0, "num_gpus": 0}
    gpu = 1 if str(spec.get("device", "cpu")).startswith("cuda") else 0
    return {"num_cpus": int(spec.get("threads", 1)), "num_gpus": gpu}


def run_ray(spec: dict[str, Any], out: str, units: list[Unit], workers: int, progress: bool, *,
            address: str | None = None, retries: int = 1, timeout: float | None = None) -> Iterator[dict[str, Any]]:
    """One Ray task per unit (CPUs: the suite's threads; one GPU each with --device cuda), retried when a worker
    dies; a unit running longer than `timeout` seconds is cancelled and recorded as failed. Yields unit.json's.

    Connects to `address` (or $RAY_ADDRESS) when given, else starts a local Ray instance with `workers` CPUs.
    wrn-asha units reserve no CPU or GPU themselves: their ASHA trials are Ray actors that request them.
    """
    with ray_session(address, workers, extra="tune") as ray:
        yield from _ray_units(ray, spec, out, units, retries, timeout)


def _ray_units(ray: Any, spec: dict[str, Any], out: str, units: list[Unit], retries: int,
               timeout: float | None) -> Iterator[dict[str, Any]]:
    remote = ray.remote(run_unit)
    pending: dict[Any, Unit] = {}
    try:
        for unit in units:
            task = remote.options(**resources(spec, unit), max_retries=retries, retry_exceptions=False)
            pending[task.remote(spec, out, *unit, progress=False)] = unit
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in done:
                unit = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # noqa: BLE001  (a worker that died after its retries)
                    yield _failed(out, unit, f"the Ray task failed: {type(exc).__name__}: {str(exc)[:500]}")
            if timeout is None:
                continue
            now = time.time()
            for ref, unit in list(pending.items()):
                begun = _started(out, unit)
                if begun is not None and now - begun > timeout:
                    ray.cancel(ref, force=True)
                    pending.pop(ref)
                    yield _failed(out, unit, f"timed out: still running after --unit-timeout {timeout:g} s (cancelled;"
                                             " rerun the suite to resume it from its checkpoints)")
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
