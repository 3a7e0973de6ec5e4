"""CMake configuration: NB360_CUDA=ON fails clearly when nvcc or a CUDA torch is missing; AUTO skips CUDA."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CMAKE = shutil.which("cmake", path=str(Path(sys.executable).parent)) or shutil.which("cmake")
torch = pytest.importorskip("torch")
pybind11 = pytest.importorskip("pybind11")

pytestmark = pytest.mark.skipif(CMAKE is None, reason="cmake not found")


def configure(tmp_path: Path, *defines: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CMAKE, "-S", str(ROOT), "-B", str(tmp_path / "b"), "-DSKBUILD_PROJECT_VERSION=0.0.0",
         f"-DPython_EXECUTABLE={sys.executable}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", *defines],
        capture_output=True, text=True)


@pytest.mark.skipif(torch.version.cuda is not None and shutil.which("nvcc") is not None,
                    reason="this machine can build the CUDA ops")
def test_cuda_on_without_prerequisites_fails_naming_them(tmp_path: Path) -> None:
    proc = configure(tmp_path, "-DNB360_CUDA=ON")
    assert proc.returncode != 0
    err = proc.stderr
    assert "NB360_CUDA=ON but CUDA ops cannot be built" in err
    if torch.version.cuda is None:
        assert "CPU build" in err and "install a CUDA build of torch" in err
    if shutil.which("nvcc") is None:
        assert "no CUDA compiler (nvcc)" in err


def test_cuda_auto_skips_cuda_without_prerequisites(tmp_path: Path) -> None:
    if torch.version.cuda is not None and shutil.which("nvcc") is not None:
        pytest.skip("this machine can build the CUDA ops")
    proc = configure(tmp_path, "-DNB360_CUDA=AUTO")
    assert proc.returncode == 0, proc.stderr
    assert "nb360: CUDA ops skipped" in proc.stdout
