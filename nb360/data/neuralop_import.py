"""Import the small real Darcy Flow files that the `neuraloperator==0.3.0` wheel ships.

The wheel holds `neuralop/datasets/data/darcy_{train_16,test_16,test_32}.pt`: torch zip pickles
of `{"x": bool (N, R, R), "y": float32 (N, R, R)}`, made by a PDE solver (1000 train samples at
16 x 16, 50 test samples each at 16 x 16 and 32 x 32). They are read here WITHOUT torch, with a
restricted unpickler that only rebuilds plain tensors (reference: offline-data.md sections 2.5
and 4), and written in the released files' `.mat` layout (`coeff`, `sol`, float64) so the Darcy
loader reads them. Values are kept as shipped: `coeff` is the 0/1 two-phase indicator (not
12 / 4) and `sol` is neuraloperator's rescaled solution (not raw u); the provenance record says so.
(Which phase is which is not documented. Measured here: solving with True -> 12, False -> 4
correlates 0.85 with `y` over 30 test_32 samples, against 0.49 for the opposite mapping, so
True is most likely the high-permeability phase.)

Nothing is installed: the wheel is fetched with `pip download --no-deps` (or given by path).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

PACKAGE, VERSION = "neuraloperator", "0.3.0"
MEMBERS = {  # wheel member -> (output .mat name, split, resolution)
    "neuralop/datasets/data/darcy_train_16.pt": ("darcyflow_neuralop_train_16.mat", "train", 16),
    "neuralop/datasets/data/darcy_test_16.pt": ("darcyflow_neuralop_test_16.mat", "test", 16),
    "neuralop/datasets/data/darcy_test_32.pt": ("darcyflow_neuralop_test_32.mat", "test", 32),
}
PROVENANCE_FILE = "darcyflow_neuralop.json"

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BoolStorage": np.bool_, "ByteStorage": np.uint8, "CharStorage": np.int8, "ShortStorage": np.int16,
    "IntStorage": np.int32, "LongStorage": np.int64,
}


# ----------------------------------------------------------------------------- torch zip pickles without torch

@dataclass(frozen=True)
class _StorageRef:
    dtype: type
    key: str


class _TensorUnpickler(pickle.Unpickler):
    """Unpickles torch's data.pkl into numpy arrays; any global other than plain tensors is refused."""

    def __init__(self, data: bytes, read_storage):
        super().__init__(io.BytesIO(data))
        self._read_storage = read_storage

    def persistent_load(self, pid):  # ('storage', StorageType, key, location, numel)
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise DataError(f"unexpected persistent id {pid!r} in a torch file")
        storage_type = pid[1]
        if not isinstance(storage_type, _StorageType):
            raise DataError(f"unexpected storage type {storage_type!r} in a torch file")
        return _StorageRef(storage_type.dtype, str(pid[2]))

    def find_class(self, module: str, name: str):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return self._rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        raise DataError(f"refusing to load {module}.{name} from a torch file (only plain tensors are read)")

    def _rebuild_tensor(self, storage: _StorageRef, offset: int, size, stride, *_rest) -> np.ndarray:
        buffer = self._read_storage(storage)
        item = buffer.itemsize
        needed = offset + 1 + sum((s - 1) * st for s, st in zip(size, stride)) if all(size) else 0
        if needed > buffer.size:
            raise DataError("a tensor in the torch file reaches past its storage (truncated file?)")
        view = np.lib.stride_tricks.as_strided(buffer[offset:], shape=tuple(size),
                                               strides=tuple(st * item for st in stride))
        return np.array(view)  # copy into a plain C-ordered array


@dataclass(frozen=True)
class _StorageType:
    dtype: type


def read_torch_zip(data: bytes, name: str = "torch file") -> object:
    """Load a torch zip pickle (torch.save format) of plain tensors into numpy arrays, without torch."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DataError(f"{name} is not a torch zip file ({exc})") from exc
    with zf:
        names = zf.namelist()
        if not names:
            raise DataError(f"{name} is an empty archive")
        prefix = names[0].split("/", 1)[0]
        if f"{prefix}/data.pkl" not in names:
            raise DataError(f"{name} has no {prefix}/data.pkl: not a torch.save file")
        if f"{prefix}/byteorder" in names and zf.read(f"{prefix}/byteorder").strip() != b"little":
            raise DataError(f"{name} was saved big-endian; nb360 reads little-endian torch files only")
        cache: dict[str, np.ndarray] = {}

        def read_storage(ref: _StorageRef) -> np.ndarray:
            if ref.key not in cache:
                try:
                    raw = zf.read(f"{prefix}/data/{ref.key}")
                except KeyError:
                    raise DataError(f"{name} lacks storage {ref.key}") from None
                cache[ref.key] = np.frombuffer(raw, dtype=np.dtype(ref.dtype).newbyteorder("<"))
            return cache[ref.key]

        try:
            return _TensorUnpickler(zf.read(f"{prefix}/data.pkl"), read_storage).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as exc:
            raise DataError(f"cannot read {name}: {exc}") from exc


# ----------------------------------------------------------------------------- the import

@dataclass(frozen=True)
class ImportedNeuralop:
    """What `import_neuralop` wrote."""

    files: tuple[Path, ...]
    provenance: Path
    record: dict


def fetch_wheel(directory: Path) -> Path:
    """Download the neuraloperator 0.3.0 wheel with pip (nothing is installed)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-d", str(directory), f"{PACKAGE}=={VERSION}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(directory.glob("neuraloperator-0.3.0-*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DataError(f"could not download the {PACKAGE}=={VERSION} wheel with pip ({tail[0]}); without network "
                        "access, fetch it elsewhere with `pip download --no-deps neuraloperator==0.3.0` and pass "
                        "it with --wheel PATH")
    return wheels[0]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def import_neuralop(root: str | os.PathLike, *, wheel: str | os.PathLike | None = None) -> ImportedNeuralop:
    """Write the neuraloperator 0.3.0 Darcy files into `root` as .mat files plus a provenance record."""
    from scipy.io import savemat

    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    (out / PROVENANCE_FILE).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="nb360-neuralop-") as tmp:
        wheel_path = Path(wheel) if wheel is not None else fetch_wheel(Path(tmp))
        if not wheel_path.exists():
            raise DataError(f"no wheel at {wheel_path}")
        wheel_bytes = wheel_path.read_bytes()
        try:
            whl = zipfile.ZipFile(io.BytesIO(wheel_bytes))
        except zipfile.BadZipFile as exc:
            raise DataError(f"{wheel_path} is not a wheel (zip) file: {exc}") from exc
        with whl:
            missing = [m for m in MEMBERS if m not in whl.namelist()]
            if missing:
                raise DataError(f"{wheel_path.name} lacks {', '.join(missing)}: only neuraloperator 0.3.0 ships the "
                                "Darcy files (1.x and 2.x do not)")
            written, entries = [], {}
            for member, (mat_name, split, resolution) in MEMBERS.items():
                raw = whl.read(member)
                obj = read_torch_zip(raw, member)
                if not (isinstance(obj, dict) and {"x", "y"} <= set(obj)):
                    raise DataError(f"{member} does not hold {{'x', 'y'}} tensors")
                x, y = np.asarray(obj["x"]), np.asarray(obj["y"])
                if x.shape != y.shape or x.ndim != 3 or x.shape[1:] != (resolution, resolution):
                    raise DataError(f"{member}: unexpected shapes x {x.shape}, y {y.shape}")
                coeff, sol = x.astype(np.float64), y.astype(np.float64)
                path = out / mat_name
                _write_atomically(path, lambda fh, c=coeff, s=sol: savemat(fh, {"coeff": c, "sol": s}))
                written.append(path)
                entries[mat_name] = {
                    "from": member, "member_sha256": _sha256(raw), "split": split, "resolution": resolution,
                    "n": int(x.shape[0]), "x_dtype": str(x.dtype), "y_dtype": str(y.dtype),
                    "sha256": _sha256(path.read_bytes()), "size": path.stat().st_size,
                }
    record = {
        "generated": False,
        "source": f"{PACKAGE}=={VERSION} wheel from PyPI ({wheel_path.name}, sha256 {_sha256(wheel_bytes)})",
        "license": "Modified BSD (neuraloperator)",
        "note": ("Real Darcy Flow solver outputs as shipped by neuraloperator 0.3.0, NOT the NAS-Bench-360 "
                 "piececonst_r421 files: 16x16 and 32x32 grids; coeff is the 0/1 two-phase indicator as shipped "
                 "(bool -> float64, not 12/4); sol is neuraloperator's rescaled solution (float32 -> float64, "
                 "range about -0.4..2.1, not raw u)."),
        "importer": "nb360.data.neuralop_import",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "files": entries,
    }
    provenance = out / PROVENANCE_FILE
    _write_atomically(provenance, lambda fh: fh.write((json.dumps(record, indent=2) + "\n").encode()))
    return ImportedNeuralop(tuple(written), provenance, record)
