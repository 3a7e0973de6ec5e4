"""Compile-check every torch-free CUDA kernel source with plain nvcc for sm_80 and sm_90.

The torch glue (csrc/ops/cuda/<op>.cu) needs a CUDA build of torch; the kernels
(csrc/ops/cuda/*_kernel.cu) do not, so they are compiled here even on GPU-less machines.
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
