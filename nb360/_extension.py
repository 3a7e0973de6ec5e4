"""Loads nb360._C, the torch custom-op library, with errors that say how to fix a bad build."""

from __future__ import annotations

import functools
from types import ModuleType

from . import _build_info
from .errors import BuildError


@functools.cache
def load_ops() -> ModuleType:
    """Import torch and nb360._C (registering torch.ops.nb360.*); return the _C module."""
    try:
        import torch  # noqa: F401  (libtorch must be loaded before _C's symbols resolve)
    except ImportError as exc:
        raise BuildError("nb360's torch ops need torch: `pip install torch==2.13.0` (or a CUDA build), "
                         "then reinstall nb360") from exc
    if not _build_info.TORCH_OPS:
        raise BuildError("this nb360 was built without its torch ops (NB360_TORCH=OFF or torch missing at build "
                         "time): `pip install --no-build-isolation -e .` with torch installed")
    try:
        from . import _C
    except ImportError as exc:
        raise BuildError(f"nb360._C failed to load ({exc}); it was built against torch "
                         f"{_build_info.TORCH_VERSION}: rebuild with `pip install --no-build-isolation -e .`") from exc
    return _C


def cuda_ops_available() -> bool:
    """True when the CUDA kernels of nb360's ops are compiled in and registered."""
    import torch

    load_ops()
    return torch._C._dispatch_has_kernel_for_dispatch_key("nb360::mixed_sum", "CUDA")
