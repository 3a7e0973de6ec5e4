"""Import of the neuraloperator 0.3.0 Darcy files: the torch-free .pt reader, and the import (slow, needs PyPI)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from scipy.io import loadmat

from nb360.data import neuralop_import as nop
from nb360.errors import DataError


def _torch_save(obj) -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_reader_matches_torch_on_strided_tensors() -> None:
    torch = pytest.importorskip("torch")
    x = torch.rand(5, 4, 3) > 0.5
    y = torch.randn(3, 4, 5).permute(2, 1, 0)  # a non-contiguous stride, as the neuralop files have
    z = torch.arange(24, dtype=torch.int64).reshape(4, 6)[1:, 2:]  # a storage offset
    got = nop.read_torch_zip(_torch_save({"x": x, "y": y, "z": z}))
    assert np.array_equal(got["x"], x.numpy()) and got["x"].dtype == np.bool_
    assert np.array_equal(got["y"], y.numpy()) and got["y"].dtype == np.float32
    assert np.array_equal(got["z"], z.numpy())


def test_reader_refuses_anything_but_tensors() -> None:
    pytest.importorskip("torch")
    import collections

    with pytest.raises(DataError, match="refusing to load"):
        nop.read_torch_zip(_torch_save({"c": collections.Counter("ab")}))
    with pytest.raises(DataError, match="not a torch zip"):
        nop.read_torch_zip(b"not a zip at all")


def test_wheel_without_the_files_is_refused(tmp_path) -> None:
    wheel = tmp_path / "neuraloperator-2.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("neuralop/__init__.py", "")
    with pytest.raises(DataError, match="only neuraloperator 0.3.0 ships"):
        nop.import_neuralop(tmp_path / "out", wheel=wheel)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d",
                           str(directory), "neuraloperator==0.3.0"], capture_output=True, text=True)
    found = sorted(directory.glob("neuraloperator-0.3.0-*.whl"))
    if proc.returncode != 0 or not found:
        pytest.skip("cannot download neuraloperator==0.3.0 from the package index (offline?)")
    return found[0]


@pytest.mark.slow
def test_import_writes_mat_files_matching_torch(wheel, tmp_path) -> None:
    out = nop.import_neuralop(tmp_path, wheel=wheel)
    shapes = {p.name: loadmat(p)["coeff"].shape for p in out.files}
    assert shapes == {"darcyflow_neuralop_train_16.mat": (1000, 16, 16), "darcyflow_neuralop_test_16.mat": (50, 16, 16),
                      "darcyflow_neuralop_test_32.mat": (50, 32, 32)}
    record = json.loads(out.provenance.read_text())
    assert record["generated"] is False and "neuraloperator==0.3.0" in record["source"]
    torch = pytest.importorskip("torch")
    with zipfile.ZipFile(wheel) as zf:
        ref = torch.load(io.BytesIO(zf.read("neuralop/datasets/data/darcy_test_32.pt")), weights_only=True)
    mat = loadmat(tmp_path / "darcyflow_neuralop_test_32.mat")
    assert np.array_equal(mat["coeff"], ref["x"].numpy().astype(np.float64))
    assert np.array_equal(mat["sol"], ref["y"].numpy().astype(np.float64))


@pytest.mark.slow
def test_cli_import_neuralop_downloads_the_wheel(tmp_path, wheel) -> None:
    from nb360.cli import main

    assert main(["data", "import-neuralop", "--root", str(tmp_path)]) == 0
    assert (tmp_path / nop.PROVENANCE_FILE).exists()
