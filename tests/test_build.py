"""The compiled modules build, load, and carry working functions; the build record is checked on import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nb360
from nb360 import _build_check, _build_info
from nb360.errors import BuildError


def test_version_matches_build_record() -> None:
    assert nb360.__version__ == _build_info.VERSION
    assert nb360.__version__.count(".") == 2


def test_import_nb360_does_not_import_torch() -> None:
    code = "import sys, nb360, nb360._table; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_table_module_gathers_from_a_mapped_file(tmp_path) -> None:
    from nb360 import _table

    values = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    header = b"x" * 64  # the region starts at a non-zero offset, as datasets in an HDF5 file do
    path = tmp_path / "region.bin"
    path.write_bytes(header + values.tobytes())
    mapped = _table.MappedFile(str(path))
    assert mapped.size == 64 + 4000
    idx = np.random.default_rng(1).integers(0, 1000, size=(7, 13))
    got = mapped.gather_f32(64, 1000, idx)
    assert got.shape == (7, 13) and got.dtype == np.float32
    np.testing.assert_array_equal(got, values[idx])


def test_table_module_rejects_bad_access(tmp_path) -> None:
    from nb360 import _table

    path = tmp_path / "small.bin"
    path.write_bytes(np.arange(10, dtype=np.float32).tobytes())
    mapped = _table.MappedFile(str(path))
    with pytest.raises(IndexError, match="out of range"):
        mapped.gather_f32(0, 10, np.array([0, 10]))
    with pytest.raises(IndexError):
        mapped.gather_f32(0, 10, np.array([-1]))
    with pytest.raises(ValueError, match="outside"):
        mapped.gather_f32(0, 11, np.array([0]))
    with pytest.raises(ValueError, match="aligned"):
        mapped.gather_f32(2, 1, np.array([0]))
    with pytest.raises(OSError, match="no-such-file"):
        _table.MappedFile(str(tmp_path / "no-such-file"))
    with pytest.raises(OSError, match="not a regular file"):
        _table.MappedFile(str(tmp_path))


def test_torch_ops_module_loads_and_registers() -> None:
    torch = pytest.importorskip("torch")
    from nb360._extension import load_ops

    c_module = load_ops()
    assert c_module.WITH_CUDA in (0, 1)
    assert torch._C._dispatch_has_kernel_for_dispatch_key("nb360::mixed_sum", "CPU")
    assert c_module.WITH_CUDA == int(_build_info.CUDA)


def test_cuda_major_mismatch_is_a_clear_import_error(monkeypatch) -> None:
    monkeypatch.setattr(_build_info, "CUDA", True)
    monkeypatch.setattr(_build_info, "CUDA_VERSION", "12.8")
    monkeypatch.setattr(_build_check, "installed_torch_cuda", lambda: "13.0")
    with pytest.raises(BuildError, match=r"CUDA 12\.8.*CUDA 13\.0.*pip install"):
        _build_check.check_build()
    monkeypatch.setattr(_build_check, "installed_torch_cuda", lambda: "")
    with pytest.raises(BuildError, match="CPU build"):
        _build_check.check_build()
    monkeypatch.setattr(_build_check, "installed_torch_cuda", lambda: "12.4")
    assert _build_check.check_build() is _build_info  # same major: fine


def test_installed_torch_cuda_reads_version_file() -> None:
    torch = pytest.importorskip("torch")
    assert _build_check.installed_torch_cuda() == (torch.version.cuda or "")
