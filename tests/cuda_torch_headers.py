"""The C++ headers of a CUDA build of torch, without installing it: `torch/include/` of the CUDA wheel.

The CUDA glue (csrc/ops/cuda/<op>.cu: CUDAGuard, the current stream) needs headers that only CUDA builds
of torch ship (c10/cuda/impl/cuda_cmake_macros.h is generated at torch's build), so the CPU torch of the
venv cannot compile it. This fetches the wheel of the installed torch version through pip from the public
index (the Linux x86-64 wheel there is the CUDA build), keeps only `torch/include/` (about 40 MB of a
~530 MB wheel) in a cache, and deletes the wheel. Measured on the development machine: the download took
26 s and the extraction 8 s, once; later runs reuse the cache.

Cache: $NB360_CUDA_HEADERS_CACHE, else ~/.cache/nb360/cuda-torch-headers/<torch version>/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def cache_dir(version: str) -> Path:
    """Where the headers of torch `version` are kept."""
    root = os.environ.get("NB360_CUDA_HEADERS_CACHE") or Path.home() / ".cache" / "nb360" / "cuda-torch-headers"
    return Path(root) / version


def cuda_torch_include(version: str) -> tuple[Path, dict]:
    """(include directory, record) of the CUDA torch wheel `version`, fetched once into the cache."""
    target = cache_dir(version)
    record_file = target / "record.json"
    if record_file.exists():
        return target / "torch" / "include", json.loads(record_file.read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        # --isolated: ignore the machine's find-links and extra indexes, which hold the CPU wheel of this version
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--isolated", "--no-deps",
                               "--only-binary=:all:", "--quiet", f"torch=={version}", "-d", tmp],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"pip could not download the torch {version} wheel for its CUDA headers:\n"
                               f"{proc.stderr[-2000:]}")
        wheel = next(Path(tmp).glob("torch-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            version_py = z.read("torch/version.py").decode()
            cuda = re.search(r"^cuda\b.*?'([0-9.]+)'", version_py, re.MULTILINE)
            if cuda is None:
                raise RuntimeError(f"{wheel.name} is not a CUDA build of torch (torch/version.py names no CUDA)")
            members = [m for m in z.namelist() if m.startswith("torch/include/")]
            staging = Path(tmp) / "staging"
            z.extractall(staging, members)
        record = {"wheel": wheel.name, "wheel_bytes": wheel.stat().st_size, "cuda": cuda.group(1),
                  "headers": len(members)}
        (staging / "record.json").write_text(json.dumps(record, indent=2))
        if target.exists():  # a half-written cache from an interrupted run
            shutil.rmtree(target)
        os.replace(staging, target)
    return target / "torch" / "include", record
