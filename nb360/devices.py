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


def require_available(name: str) -> str:
    """`name` when this torch can run on it; InputError naming the fix otherwise (imports torch)."""
    check_device_name(name)
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise InputError(f"--device {name} was asked for but torch {torch.__version__} ({build}) sees no CUDA "
                             "GPU: use --device cpu, or install a CUDA build of torch on a machine with a GPU")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: torch sees {torch.cuda.device_count()} GPU(s), numbered from 0")
    return name
