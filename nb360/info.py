"""Facts about this installation: version, compiled backends actually loaded, torch, CUDA and GPUs."""

from __future__ import annotations

import platform
import sys
from typing import Any

from . import __version__, _build_info


def _table_backend() -> dict[str, Any]:
    try:
        from . import _table
    except ImportError as exc:
        return {"loaded": False, "error": str(exc)}
    return {"loaded": True, "path": _table.__file__}


def _torch_facts() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"installed": False}
    gpus = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "installed": True,
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "gpu_visible": bool(gpus),
        "gpus": gpus,
        "threads": torch.get_num_threads(),
    }


def _ops_backends() -> tuple[dict[str, Any], dict[str, Any]]:
    from .errors import BuildError

    cuda_built = {"built": _build_info.CUDA, "cuda_version": _build_info.CUDA_VERSION or None,
                  "archs": [a for a in _build_info.CUDA_ARCHS.split(";") if a]}
    try:
        from ._extension import load_ops

        c_module = load_ops()
    except BuildError as exc:
        return {"loaded": False, "error": str(exc)}, {**cuda_built, "loaded": False}
    import torch

    ops = sorted(name for name in torch._C._dispatch_get_all_op_names() if name.startswith("nb360::"))
    cpu = {"loaded": True, "path": c_module.__file__, "ops": ops,
           "built_against_torch": _build_info.TORCH_VERSION}
    cuda_loaded = bool(c_module.WITH_CUDA) and torch._C._dispatch_has_kernel_for_dispatch_key("nb360::mixed_sum", "CUDA")
    cuda = {**cuda_built, "loaded": cuda_loaded,
            "cuda_version": c_module.CUDA_VERSION or None,
            "archs": [a for a in c_module.CUDA_ARCHS.split(",") if a]}
    return cpu, cuda


def collect() -> dict[str, Any]:
    """Return everything `nb360 info` reports, as JSON-ready data."""
    torch_facts = _torch_facts()
    if torch_facts["installed"]:
        ops_cpu, ops_cuda = _ops_backends()
    else:
        ops_cpu = {"loaded": False, "error": "torch is not installed"}
        ops_cuda = {"built": _build_info.CUDA, "loaded": False}
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "backends": {"_table": _table_backend(), "_C_cpu": ops_cpu, "_C_cuda": ops_cuda},
        "torch": torch_facts,
    }
