"""Checks at import time that the compiled part of nb360 fits the installed torch (without importing torch)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from .errors import BuildError

_REBUILD = "rebuild nb360 against the installed torch: `pip install --no-build-isolation -e .` (or reinstall the matching nb360 wheel)"


def installed_torch_cuda() -> str | None:
    """Return the CUDA version the installed torch was built for ('' for a CPU build, None without torch).

    Reads torch/version.py as text so that `import nb360` never pays for importing torch.
    """
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    version_file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version_file.read_text()
    except OSError:
        return None
    match = re.search(r"^cuda\b[^=]*=\s*['\"]([0-9.]+)['\"]", text, flags=re.MULTILINE)
    return match.group(1) if match else ""


def check_build() -> ModuleType:
    """Import the build record and raise BuildError when its CUDA major clashes with torch's."""
    try:
        from . import _build_info
    except ImportError as exc:  # running from a source tree that was never built
        raise BuildError(
            "nb360's compiled part is not built (nb360/_build_info.py is missing): "
            "install the package with `pip install -e .` after `pip install torch==2.13.0`"
        ) from exc
    if _build_info.CUDA:
        torch_cuda = installed_torch_cuda()
        built_major = _build_info.CUDA_VERSION.split(".")[0]
        if torch_cuda is None:
            raise BuildError(f"this nb360 build has CUDA {_build_info.CUDA_VERSION} ops but torch is not installed: "
                             f"install a torch built for CUDA {built_major}.x")
        if torch_cuda.split(".")[0] != built_major:
            have = f"CUDA {torch_cuda}" if torch_cuda else "a CPU build"
            raise BuildError(f"nb360 was compiled against CUDA {_build_info.CUDA_VERSION} but the installed torch is "
                             f"{have}; the CUDA majors must match: {_REBUILD}")
    return _build_info
