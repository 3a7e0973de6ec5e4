"""The compiled modules build, load, and carry working functions; the build record is checked on import."""

from __future__ import annotations

import subprocess
import sys

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


def test_table_module_carries_the_table_core(fixture_table) -> None:
    from nb360 import _table

    assert _table.SCHEMA_VERSION == 1 and _table.USER_BLOCK_SIZE == 4096
    table_file = _table.TableFile(str(fixture_table))
    assert table_file.size == fixture_table.stat().st_size
    assert table_file.index_json().startswith(b"{")
    with pytest.raises(_table.FileOpenError):
        _table.TableFile(str(fixture_table) + ".missing")


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
