"""Restricted unpickling of downloaded files (NATS-Bench tables, released task data): no code, bounded memory.

Unpickling runs code and allocates what the file declares. The unpickler here admits only the
globals a caller lists (containers, numpy arrays, scalars and dtypes), and it checks every numpy
array against the bytes the file really holds *before* numpy allocates it: a 201-byte pickle that
declares an object array of 400 million elements took the importer to 3 GB and a segfault (numpy
zero-fills object arrays before it reads their items). Opcodes that declare a length (BINBYTES8,
FRAME, ...) need no guard: CPython reads their bytes lazily or reserves them without touching.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterable
from typing import IO, Any

import numpy as np

from .errors import DataError

NUMPY_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
})


def _numel(shape: Any) -> int:
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise pickle.UnpicklingError(f"an array in the file has the invalid shape {shape!r}")
    return math.prod(shape)


class _CheckedArray(np.ndarray):
    """The ndarray type the unpickler hands out: its state is checked against the data before numpy allocates."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("an array in the file has a malformed state")
        shape, dtype, data = state[-4], state[-3], state[-1]
        n = _numel(shape)
        if not isinstance(dtype, np.dtype):
            raise pickle.UnpicklingError("an array in the file has no valid dtype")
        if dtype.hasobject:
            if not isinstance(data, list) or len(data) != n:
                raise pickle.UnpicklingError(f"an object array in the file declares {n} elements but holds "
                                             f"{len(data) if isinstance(data, list) else 'no list of'} items")
        elif not isinstance(data, (bytes, bytearray)) or len(data) != n * dtype.itemsize:
            raise pickle.UnpicklingError(f"an array in the file declares {n} x {dtype.itemsize} bytes but holds "
                                         f"{len(data) if isinstance(data, (bytes, bytearray)) else 'no'} bytes")
        super().__setstate__(state)


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's _reconstruct, limited to what pickle itself writes: an empty placeholder filled by __setstate__."""
    if _numel(shape) != 0:
        raise pickle.UnpicklingError(f"refusing to pre-allocate an array of shape {shape!r}: numpy pickles "
                                     "arrays as empty placeholders, so this file is not what it claims")
    return np.ndarray.__new__(_CheckedArray, shape, dtype)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only `allowed` globals and checks every numpy array it rebuilds."""

    def __init__(self, file: IO[bytes], allowed: Iterable[tuple[str, str]], source: str, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.allowed = frozenset(allowed)
        self.source = source
        self.arrays = 0

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise DataError(f"refusing to load {module}.{name}: refusing to unpickle {module}.{name} from "
                            f"{self.source}, which should hold only plain containers and numpy values, so it is "
                            "either not the expected file or malicious")
        if name == "ndarray" and module == "numpy":
            self.arrays += 1
            return _CheckedArray
        if name == "_reconstruct":
            self.arrays += 1
            return _reconstruct
        if module.startswith("numpy.core.") and int(np.__version__.split(".")[0]) >= 2:
            module = "numpy._core." + module[len("numpy.core."):]  # numpy 2 renamed numpy.core
        return super().find_class(module, name)

    def load(self) -> Any:
        value = super().load()
        return _plain(value) if self.arrays else value


def _plain(value: Any) -> Any:
    """`value` with every checked array turned back into a plain ndarray (containers rebuilt in place)."""
    if isinstance(value, _CheckedArray):
        plain = value.view(np.ndarray)
        if plain.dtype.hasobject:
            for i, item in enumerate(plain.flat):
                plain.flat[i] = _plain(item)
        return plain
    if isinstance(value, dict):
        for key in list(value):
            value[key] = _plain(value[key])
        return value
    if isinstance(value, list):
        value[:] = [_plain(v) for v in value]
        return value
    if isinstance(value, tuple):
        return type(value)(_plain(v) for v in value) if type(value) is tuple else value
    return value


def safe_load(stream: IO[bytes], allowed: Iterable[tuple[str, str]], source: str, **kwargs: Any) -> Any:
    """Unpickle `stream` with the restrictions above (DataError for a refused global, UnpicklingError otherwise)."""
    return RestrictedUnpickler(stream, allowed, source, **kwargs).load()
