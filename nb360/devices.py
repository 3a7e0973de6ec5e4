"""Device names nb360 accepts (torch-free, so the CLI can check them before any work starts)."""

from __future__ import annotations

import re

from .errors import InputError

_DEVICE = re.compile(r"(cpu|cuda)(:\d+)?")


def check_device_name(name: str) -> str:
    """Return name when it is cpu, cuda or cuda:N; raise InputError naming the choices otherwise."""
    if not isinstance(name, str) or not _DEVICE.fullmatch(name):
        raise InputError(f"unknown device {name!r}: use cpu, cuda or cuda:N (N = a GPU index)")
    return name
