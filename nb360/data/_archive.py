"""Uniform read access to a released archive or its extracted folder: zip, tar or a directory tree.

Members are read on demand (random access), so a multi-GB archive is never unpacked or loaded
whole. Open handles are per process, so datasets work with forking DataLoader workers.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path
from typing import IO

from ..errors import DataError


class Archive:
    """Read-only access to a tree of files; member names are '/'-separated paths relative to its top."""

    label: str

    def names(self) -> list[str]:
        """Every regular file in the tree."""
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        """The bytes of member `name` (KeyError when it does not exist)."""
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        """A binary stream of member `name`."""
        return io.BytesIO(self.read(name))

    def find(self, suffix: str) -> str | None:
        """The shortest member name that equals `suffix` or ends with '/' + `suffix`."""
        if self.exists(suffix):
            return suffix
        hits = [n for n in self.names() if n.endswith("/" + suffix)]
        return min(hits, key=len) if hits else None

    def exists(self, name: str) -> bool:
        """Whether member `name` exists."""
        if not hasattr(self, "_name_set"):
            self._name_set = set(self.names())
        return name in self._name_set

    def list(self, folder: str) -> list[str]:
        """Sorted members directly inside `folder` ('a/b', no trailing slash)."""
        prefix = folder.rstrip("/") + "/"
        return sorted(n for n in self.names() if n.startswith(prefix) and "/" not in n[len(prefix):])


class DirectoryArchive(Archive):
    """An extracted folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)
        self._names: list[str] | None = None

    def names(self) -> list[str]:
        if self._names is None:
            found = []
            for directory, _, files in os.walk(self.root):
                rel = Path(directory).relative_to(self.root)
                found.extend((rel / f).as_posix() if str(rel) != "." else f for f in files)
            self._names = sorted(found)
        return self._names

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()  # no walk over a large extracted tree

    def list(self, folder: str) -> list[str]:
        directory = self.root / folder
        if not directory.is_dir():
            return []
        return sorted(f"{folder.rstrip('/')}/{e.name}" for e in os.scandir(directory) if e.is_file())

    def read(self, name: str) -> bytes:
        path = self.root / name
        if not path.is_file():
            raise KeyError(name)
        return path.read_bytes()

    def open(self, name: str) -> IO[bytes]:
        path = self.root / name
        if not path.is_file():
            raise KeyError(name)
        return open(path, "rb")


class ZipArchive(Archive):
    """A zip file, read member by member."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        self._pid: int | None = None
        self._zip: zipfile.ZipFile | None = None
        self._names = sorted(i.filename for i in self._handle().infolist() if not i.is_dir())

    def _handle(self) -> zipfile.ZipFile:
        if self._zip is None or self._pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{self.path} is not a readable zip archive ({exc}); delete it and download it "
                                "again") from exc
            self._pid = os.getpid()
        return self._zip

    def names(self) -> list[str]:
        return self._names

    def read(self, name: str) -> bytes:
        try:
            return self._handle().read(name)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{self.path}: member {name} is corrupt ({exc}); download the archive again") from exc

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_zip"], state["_pid"] = None, None  # handles do not cross processes
        return state


class TarArchive(Archive):
    """A tar file: members are indexed once, then read by seeking (uncompressed tars) or through tarfile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        self._pid: int | None = None
        self._file: IO[bytes] | None = None
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            with tarfile.open(path, "r:*") as tar:
                self._compressed = not isinstance(tar.fileobj, io.BufferedReader)
                for member in tar:
                    if member.isfile():
                        name = member.name[2:] if member.name.startswith("./") else member.name
                        self._members[name] = member
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DataError(f"{path} is not a readable tar archive ({exc}); delete it and download it again") from exc
        self._names = sorted(self._members)

    def names(self) -> list[str]:
        return self._names

    def read(self, name: str) -> bytes:
        member = self._members[name]
        if self._pid != os.getpid():
            self._file, self._tar, self._pid = None, None, os.getpid()
        if not self._compressed:
            if self._file is None:
                self._file = open(self.path, "rb")
            self._file.seek(member.offset_data)
            payload = self._file.read(member.size)
        else:  # compressed tar: no random access, go through tarfile
            if self._tar is None:
                self._tar = tarfile.open(self.path, "r:*")
            handle = self._tar.extractfile(member)
            payload = handle.read() if handle is not None else b""
        if len(payload) != member.size:
            raise DataError(f"{self.path}: member {name} is truncated; download the archive again")
        return payload

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_tar"], state["_pid"] = None, None, None
        return state


def open_tree(path: Path) -> Archive:
    """An Archive for `path`: a directory, a zip or a tar file."""
    if path.is_dir():
        return DirectoryArchive(path)
    if zipfile.is_zipfile(path):
        return ZipArchive(path)
    if tarfile.is_tarfile(path):
        return TarArchive(path)
    raise DataError(f"{path} is neither a folder nor a zip or tar archive; delete it and download it again")
