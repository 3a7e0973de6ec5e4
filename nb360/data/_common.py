"""Loader helpers without torch: locating task files, missing-file errors, safe unpickling, npy/npz access."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from .._safe_pickle import NUMPY_GLOBALS, safe_load
from ..errors import DataError, InputError
from ..tasks import TaskCard, get_task, task_data_dir

SPLIT_MODES = ("search", "retrain")


def check_split_mode(split_mode: str) -> str:
    """Validate `split_mode` ("search": train/val/test; "retrain": train+val/test)."""
    if split_mode not in SPLIT_MODES:
        raise InputError(f"unknown split_mode {split_mode!r}; use 'search' (train/val/test) or 'retrain' "
                         "(train+val/test)")
    return split_mode


def download_command(task: str, root: str | os.PathLike[str]) -> str:
    """The exact command that fetches task `task`'s released files into the data root `root` (or makes a stand-in)."""
    if task == "darcyflow":  # its released sources are dead or unknown on the card; a generated set stands in
        return f"nb360 data generate darcyflow --root {root}` (a generated stand-in) or `nb360 data download " \
               f"darcyflow --root {root}"
    return f"nb360 data download {task} --root {root}"


class TaskData:
    """Where one task's files are: resolves names under the task directory and reports missing files."""

    def __init__(self, task: str, root: str | os.PathLike[str]) -> None:
        if root is None or str(root) == "":
            raise InputError(f"{task}: no data root given; pass the directory that holds the task data "
                             f"(fetch it with `{download_command(task, 'DIR')}`)")
        self.task = task
        self.root = Path(root).expanduser()
        self.card: TaskCard = get_task(task)
        if not self.root.is_dir():
            raise DataError(f"{task}: data root {self.root} does not exist; fetch the data with "
                            f"`{download_command(task, self.root)}`")
        # Where messages point and `nb360 data download --root` should fill: root, or root/<task> for a shared root.
        self.dir = task_data_dir(self.root, task)
        # Files are looked up in the root first, then in root/<task>/ (a name like psicov/ may also be a folder of
        # the task's own extracted archive, so the root always comes first).
        nested = self.root / task
        self.search_dirs = [self.root] + ([nested] if nested.is_dir() else [])

    def path(self, name: str) -> Path:
        """Path of `name`: the first existing of root/name and root/<task>/name, else task-dir/name."""
        for directory in self.search_dirs:
            candidate = directory / name
            if candidate.exists():
                return candidate
        return self.dir / name

    def has(self, name: str) -> bool:
        """Whether `name` exists in the task directory."""
        return self.path(name).exists()

    def find_dir(self, relative: str, max_depth: int = 3) -> Path | None:
        """The directory D in the search dirs (one of them or up to `max_depth` levels down) with D/relative existing.

        Finds an extracted archive whatever top-level folder it unpacked into.
        """
        for base in self.search_dirs:
            for depth in range(max_depth + 1):
                pattern = "/".join(["*"] * depth + [relative]) if depth else relative
                hits = sorted(base.glob(pattern))
                if hits:
                    found = hits[0]
                    for _ in PurePosixPath(relative).parts:
                        found = found.parent
                    return found
        return None

    def require(self, *names: str, hint: str = "") -> list[Path]:
        """Paths of `names`; raises DataError naming every missing one and the download command."""
        missing = [name for name in names if not self.has(name)]
        if missing:
            raise self.missing(missing, hint=hint)
        return [self.path(name) for name in names]

    def missing(self, names: Iterable[str], *, hint: str = "", command: str | None = None) -> DataError:
        """The error for missing files `names` (with an optional extra `hint`)."""
        names = list(names)
        what = "file" if len(names) == 1 else "files"
        fix = command or f"`{download_command(self.task, self.dir)}`"
        pronoun = "it" if len(names) == 1 else "them"
        message = f"{self.task}: missing data {what} {', '.join(names)} in {self.dir}; fetch {pronoun} with {fix}"
        return DataError(message + (f" ({hint})" if hint else ""))

    def corrupt(self, name: str | os.PathLike[str], problem: str) -> DataError:
        """The error for a present but unreadable/foreign file."""
        return DataError(f"{self.task}: {name} is not a valid released file ({problem}); delete it and fetch it "
                         f"again with `{download_command(self.task, self.dir)}`")


# ---------------------------------------------------------------- safe unpickling
# The released files are pickles (gzip pickle, .pkl, object .npy). A restricted unpickler only
# rebuilds numpy arrays, scalars, dtypes and plain containers, so a tampered file cannot run code.
# Arrays are checked against the bytes the file holds before numpy allocates them (nb360/_safe_pickle.py).
_ALLOWED_GLOBALS = NUMPY_GLOBALS | {
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"), ("collections", "OrderedDict"),
}


def safe_pickle_load(stream: IO[bytes], *, encoding: str = "ASCII") -> Any:
    """Unpickle `stream`, allowing only numpy arrays/scalars/dtypes and builtin containers."""
    try:
        return safe_load(stream, _ALLOWED_GLOBALS, getattr(stream, "name", "the file"), encoding=encoding)
    except DataError as exc:  # a refused global: the callers report it as an unreadable file
        raise pickle.UnpicklingError(str(exc)) from None


def load_pickle(path: Path, data: TaskData, *, encoding: str = "ASCII") -> Any:
    """Unpickle the file at `path` safely; a corrupt or foreign file raises DataError."""
    try:
        with open(path, "rb") as stream:
            return safe_pickle_load(stream, encoding=encoding)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            UnicodeDecodeError, MemoryError) as exc:
        raise data.corrupt(path.name, f"{type(exc).__name__}: {exc}") from exc


# ---------------------------------------------------------------- .npy / .npz
def read_npy(stream: IO[bytes], *, what: str = "array") -> np.ndarray:
    """Read one .npy from `stream`; object arrays (pickled payloads) go through the restricted unpickler."""
    version = np.lib.format.read_magic(stream)
    shape, fortran, dtype = _read_header(stream, version)
    if dtype.hasobject:
        array = safe_pickle_load(stream, encoding="latin1")
        if not isinstance(array, np.ndarray):
            raise ValueError(f"{what}: object .npy payload is a {type(array).__name__}, not an array")
        return array
    count = int(np.prod(shape, dtype=np.int64))
    buffer = stream.read(count * dtype.itemsize)
    if len(buffer) != count * dtype.itemsize:
        raise ValueError(f"{what}: truncated .npy ({len(buffer)} of {count * dtype.itemsize} bytes)")
    array = np.frombuffer(buffer, dtype=dtype, count=count)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _read_header(stream: IO[bytes], version: tuple[int, int]) -> tuple[tuple[int, ...], bool, np.dtype]:
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(stream)
    # numpy has no public reader for 3.0 headers (utf-8 field names); use its private one where it exists.
    for module in (np.lib.format, getattr(np.lib, "_format_impl", None)):
        reader = getattr(module, "_read_array_header", None)
        if reader is not None:
            return reader(stream, version)
    raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported by this numpy")


def load_npy(path: Path, data: TaskData, *, mmap: bool = True) -> np.ndarray:
    """Load a .npy file: memory-mapped when it holds plain numbers, unpickled safely when it holds objects."""
    try:
        with open(path, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            _, _, dtype = _read_header(stream, version)
        if mmap and not dtype.hasobject:
            return np.load(path, mmap_mode="r")
        with open(path, "rb") as stream:
            return read_npy(stream, what=path.name)
    except (ValueError, OSError, EOFError, pickle.UnpicklingError, TypeError) as exc:
        raise data.corrupt(path.name, str(exc)) from exc


def npz_array(path: Path, key: str, data: TaskData, *, mmap: bool = True) -> np.ndarray:
    """Array `key` of the .npz at `path`; memory-mapped in place when the member is stored uncompressed."""
    member = key if key.endswith(".npy") else key + ".npy"
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise data.corrupt(path.name, f"it has no array {key!r}; arrays: "
                                   f"{', '.join(n[:-4] for n in archive.namelist())}") from None
            if mmap and info.compress_type == zipfile.ZIP_STORED:
                mapped = _memmap_stored_member(path, archive, info)
                if mapped is not None:
                    return mapped
            with archive.open(info) as stream:
                return read_npy(io.BufferedReader(stream), what=f"{path.name}:{key}")  # type: ignore[arg-type]
    except zipfile.BadZipFile as exc:
        raise data.corrupt(path.name, f"not a zip/npz archive: {exc}") from exc
    except (ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise data.corrupt(path.name, f"array {key!r}: {exc}") from exc


def _memmap_stored_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray | None:
    """Memory-map an uncompressed .npy member in place (numpy's npz reader would read it all into memory)."""
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        local = raw.read(30)
        if local[:4] != b"PK\x03\x04":
            return None
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        data_start = info.header_offset + 30 + name_len + extra_len
        raw.seek(data_start)
        version = np.lib.format.read_magic(raw)
        shape, fortran, dtype = _read_header(raw, version)
        if dtype.hasobject:
            return None
        offset = raw.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
