"""Compile-check the CUDA sources with nvcc on machines without a GPU or a CUDA build of torch.

The torch-free kernels (csrc/ops/cuda/*_kernel.cu) compile with plain nvcc for sm_80 and sm_90 (fast set).
The torch glue (csrc/ops/cuda/<op>.cu) needs the headers of a CUDA build of torch: the slow test fetches
them once from the CUDA wheel of the installed torch version, without installing it (tests/cuda_torch_headers.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

NVCC = shutil.which("nvcc")
KERNEL_DIR = Path(__file__).resolve().parents[1] / "csrc" / "ops" / "cuda"
KERNELS = sorted(KERNEL_DIR.glob("*_kernel.cu"))


def test_every_cuda_op_has_a_torch_free_kernel_source() -> None:
    glue = sorted(p for p in KERNEL_DIR.glob("*.cu") if not p.name.endswith("_kernel.cu"))
    assert glue, "no CUDA op sources found"
    for g in glue:
        assert (KERNEL_DIR / f"{g.stem}_kernel.cu").exists(), f"{g.name} has no {g.stem}_kernel.cu"
    for k in KERNELS:
        for source in (k, k.with_suffix(".h")):
            if source.exists():
                includes = re.findall(r"^\s*#\s*include\s*[<\"]([^>\"]+)", source.read_text(), re.MULTILINE)
                torch_includes = [i for i in includes if i.split("/")[0] in {"torch", "ATen", "c10"}]
                assert not torch_includes, f"{source.name} must stay torch-free for plain nvcc: {torch_includes}"


@pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("source", KERNELS, ids=lambda p: p.name)
def test_kernel_compiles_with_nvcc(source: Path, arch: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [NVCC, "-std=c++17", f"-arch={arch}", "-Werror=all-warnings", "-Xcompiler", "-fPIC", "-c", str(source),
         "-o", str(tmp_path / f"{source.stem}.o")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, f"nvcc failed for {source.name} ({arch}):\n{proc.stderr}"


GLUE = sorted(p for p in KERNEL_DIR.glob("*.cu") if not p.name.endswith("_kernel.cu"))


@pytest.mark.slow
@pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH")
def test_torch_glue_compiles_against_a_cuda_build_of_torch(tmp_path: Path) -> None:
    """Every csrc/ops/cuda/<op>.cu (guards, streams, the TORCH_LIBRARY_IMPL registration) compiles with nvcc
    against the headers of the CUDA wheel of the installed torch version (fetched once, see cuda_torch_headers),
    with the flags CMakeLists.txt builds it with (C++17; one arch: the host code is the same for every arch)."""
    torch = pytest.importorskip("torch")
    from cuda_torch_headers import cuda_torch_include

    include, record = cuda_torch_include(torch.__version__.split("+")[0])
    assert (include / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h").exists(), record
    jobs = {source: subprocess.Popen(
        [NVCC, "-std=c++17", "-arch=sm_90", "-Xcompiler", "-fPIC", "-I", str(include),
         "-I", str(include / "torch" / "csrc" / "api" / "include"), "-c", str(source),
         "-o", str(tmp_path / f"{source.stem}.o")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for source in GLUE}  # in parallel: each is ~1 min of host-side parsing of the ATen headers
    for source, job in jobs.items():
        _, err = job.communicate(timeout=900)
        assert job.returncode == 0, f"nvcc failed for {source.name} against {record['wheel']}:\n{err[-4000:]}"
        assert (tmp_path / f"{source.stem}.o").stat().st_size > 0
