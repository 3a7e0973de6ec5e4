"""Connecting to Ray: a remote cluster (probed first, so an unreachable address fails fast) or a local instance.

Shared by the table builder's and the suite's Ray executors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import InputError

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


@contextmanager
def ray_session(address: str | None, workers: int, *, extra: str = "default",
                connect_timeout: float = RAY_CONNECT_TIMEOUT) -> Iterator[Any]:
    """The `ray` module, initialised: on `address` (or $RAY_ADDRESS; probed first) or a local instance with
    `workers` CPUs; a session this call started is shut down on exit, a caller's own is left alone."""
    try:
        import ray
    except ImportError:
        raise InputError(f"the ray executor needs Ray: `pip install 'ray[{extra}]'` (or use --executor "
                         "local)") from None
    address = address or os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        if address:
            check_ray_address(address, connect_timeout)
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
