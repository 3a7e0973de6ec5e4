"""Safe extraction of downloaded zip and tar archives: nothing lands outside the destination, nothing
already there is lost.

Every member is checked before anything is written: absolute paths, `..` components, links
(symbolic or hard), device files and nb360's own bookkeeping names (the checksum record
`nb360-downloads.json`, extraction markers, locks, partial downloads) are refused with a
`DataError` naming the member. Sizes are bounded before and while writing: the declared total may
not exceed MAX_RATIO times the archive's size (with a floor of MIN_ALLOWANCE), so a zip or tar.gz
bomb is refused. The archive is unpacked into a temporary directory inside the destination and
its files are then moved into place, merging with folders already there; a file that already
exists with other content is a clash that is refused, never overwritten, unless this archive's
own earlier, interrupted extraction put it there (its journal says so). A marker file records a
finished extraction so that a second run skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from ..errors import DataError
from ._records import MANIFEST

MAX_RATIO = 100  # extracted bytes per archive byte; real data archives stay far below (images, audio: ~1)
MIN_ALLOWANCE = 128 << 20  # small archives may always unpack to this much
_RESERVED = (MANIFEST,)  # the checksum record of the data folder
_RESERVED_SUFFIXES = (".extracted", ".extracting", ".nb360-lock", ".lock", ".part")


def _check_member_name(name: str, archive: Path) -> PurePosixPath:
    """The member's relative path, or a DataError if it could escape the destination."""
    normalized = name.replace("\\", "/")
    path = PurePosixPath(normalized)
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":") or path.is_absolute():
        raise DataError(f"{archive.name}: member {name!r} has an absolute path; refusing to extract the archive")
    if ".." in path.parts:
        raise DataError(f"{archive.name}: member {name!r} would be written outside the destination (path "
                        "traversal); refusing to extract the archive")
    top = path.parts[0] if path.parts else ""
    if top in _RESERVED or top == archive.name or top.startswith(".nb360-") or (
            path.name.endswith(_RESERVED_SUFFIXES) and top.startswith(".")) or top.endswith(".part"):
        raise DataError(f"{archive.name}: member {name!r} would replace nb360's own bookkeeping in the data folder "
                        "(the checksum record, a marker, a lock or a partial download); refusing to extract it")
    return path


def _inside(dest: Path, relative: PurePosixPath) -> bool:
    target = (dest / relative).resolve()
    return target == dest or dest in target.parents


def _check_tar(tar: tarfile.TarFile, archive: Path, dest: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for m in members:
        rel = _check_member_name(m.name, archive)
        if m.issym() or m.islnk():
            raise DataError(f"{archive.name}: member {m.name!r} is a link; nb360 does not extract links from archives")
        if not (m.isfile() or m.isdir()):
            raise DataError(f"{archive.name}: member {m.name!r} is not a regular file or directory; refusing it")
        if not _inside(dest, rel):
            raise DataError(f"{archive.name}: member {m.name!r} resolves outside the destination; refusing it")
    return members


def _check_zip(zf: zipfile.ZipFile, archive: Path, dest: Path) -> list[zipfile.ZipInfo]:
    members = zf.infolist()
    for m in members:
        rel = _check_member_name(m.filename, archive)
        if stat.S_ISLNK(m.external_attr >> 16):
            raise DataError(f"{archive.name}: member {m.filename!r} is a link; nb360 does not extract links")
        if not _inside(dest, rel):
            raise DataError(f"{archive.name}: member {m.filename!r} resolves outside the destination; refusing it")
    return members


def _marker(archive: Path, dest: Path) -> Path:
    return dest / f".{archive.name}.extracted"


def _journal(archive: Path, dest: Path) -> Path:
    return dest / f".{archive.name}.extracting"


def is_extracted(archive: Path, dest: Path) -> bool:
    """Whether `archive` (at its current size and mtime) was fully extracted into `dest` before."""
    marker = _marker(archive, dest)
    if not marker.exists():
        return False
    try:
        info = json.loads(marker.read_text())
    except ValueError:
        return False
    st = archive.stat()
    return info.get("size") == st.st_size and info.get("mtime_ns") == st.st_mtime_ns


def _allowance(archive: Path, max_ratio: float, min_allowance: int) -> int:
    return max(int(archive.stat().st_size * max_ratio), min_allowance)


def _bomb(archive: Path, total: int, allowed: int) -> DataError:
    return DataError(f"{archive.name} would unpack to {total:,} bytes or more, over {allowed:,} ({MAX_RATIO}x its "
                     f"{archive.stat().st_size:,} bytes, at least {MIN_ALLOWANCE >> 20} MiB): a decompression bomb or "
                     "not the released file; refusing to extract it (delete it and download it again)")


def _copy(stream: IO[bytes], target: Path, budget: list[int], archive: Path, allowed: int, total: int) -> None:
    """Copy a member's bytes to `target`, counting them against the archive's remaining budget."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        while True:
            block = stream.read(1 << 20)
            if not block:
                return
            budget[0] -= len(block)
            if budget[0] < 0:  # the declared sizes lied
                raise _bomb(archive, total, allowed)
            out.write(block)


def _unpack(archive: Path, staging: Path, dest: Path, allowed: int, progress: bool) -> None:
    """Unpack every member into `staging`, bounded by `allowed` bytes in all."""
    from tqdm import tqdm

    budget = [allowed]
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = _check_zip(zf, archive, dest)
            total = sum(m.file_size for m in members)
            if total > allowed:
                raise _bomb(archive, total, allowed)
            for m in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not progress):
                rel = _check_member_name(m.filename, archive)
                if m.is_dir():
                    (staging / rel).mkdir(parents=True, exist_ok=True)
                    continue
                with zf.open(m) as stream:
                    _copy(stream, staging / rel, budget, archive, allowed, total)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            members = _check_tar(tar, archive, dest)  # reads the headers only (bounded by the stream)
            total = sum(m.size for m in members if m.isfile())
            if total > allowed:
                raise _bomb(archive, total, allowed)
            for m in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not progress):
                rel = _check_member_name(m.name, archive)
                if m.isdir() or not rel.parts:
                    (staging / rel).mkdir(parents=True, exist_ok=True)
                    continue
                stream = tar.extractfile(m)
                if stream is None:
                    raise DataError(f"{archive.name}: member {m.name!r} cannot be read; delete the archive and "
                                    "download it again")
                with stream:
                    _copy(stream, staging / rel, budget, archive, allowed, total)
    else:
        raise DataError(f"{archive} is neither a zip nor a tar archive (corrupt or truncated?); delete it and "
                        "download it again")


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _plan(staging: Path, dest: Path, archive: Path, ours: set[str]) -> list[str]:
    """The files to move from staging into dest; DataError on any clash with something already there."""
    moves: list[str] = []
    for directory, dirs, files in os.walk(staging):
        rel_dir = Path(directory).relative_to(staging)
        for name in dirs:
            target = dest / rel_dir / name
            if target.exists() and not target.is_dir() or target.is_symlink():
                raise DataError(f"extracting {archive.name} would replace the file {target} with a folder; it is "
                                "left as it is: move it away, or extract into another folder")
        for name in files:
            rel = (rel_dir / name).as_posix()
            target = dest / rel
            if target.is_symlink() or target.is_dir():
                raise DataError(f"extracting {archive.name} would replace {target}; it is left as it is: move it "
                                "away, or extract into another folder")
            if target.exists() and rel not in ours and not _same_bytes(target, staging / rel):
                raise DataError(f"extracting {archive.name} would overwrite {target}, which holds other content "
                                "(from another archive or written by hand); nothing was changed: move it away, or "
                                "extract into another folder")
            moves.append(rel)
    return moves


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike, *, progress: bool = True,
                    max_ratio: float = MAX_RATIO, min_allowance: int = MIN_ALLOWANCE) -> list[str]:
    """Extract a zip or tar archive into `dest` safely; return the top-level names it created or merged into."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    if is_extracted(archive, dest):
        return []
    staging = dest / f".nb360-extract-{archive.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    journal = _journal(archive, dest)
    try:
        try:
            _unpack(archive, staging, dest, _allowance(archive, max_ratio, min_allowance), progress)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib_error()) as exc:
            raise DataError(f"cannot extract {archive}: {exc} (the archive is corrupt or truncated; delete it and "
                            "download it again)") from exc
        try:  # files an earlier, interrupted extraction of this same archive moved in may be replaced
            ours = set(json.loads(journal.read_text()).get("files", [])) if journal.exists() else set()
        except ValueError:
            ours = set()
        moves = _plan(staging, dest, archive, ours)
        journal.write_text(json.dumps({"files": sorted(ours | set(moves))}) + "\n")
        for rel in moves:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, dest / rel)
        for directory, _, _ in os.walk(staging):  # empty folders of the archive
            (dest / Path(directory).relative_to(staging)).mkdir(parents=True, exist_ok=True)
        created = sorted({p.name for p in staging.iterdir()})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    st = archive.stat()
    _marker(archive, dest).write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                                  "entries": created, "files": len(moves)}) + "\n")
    journal.unlink(missing_ok=True)
    return created


def zlib_error() -> type[Exception]:
    """The exception a corrupt deflate stream raises (zlib.error)."""
    import zlib

    return zlib.error
