"""Safe extraction of downloaded zip and tar archives: nothing lands outside the destination.

Every member is checked before anything is written: absolute paths, `..` components, links
(symbolic or hard) and device files are refused with a `DataError` naming the member. The
archive is unpacked into a temporary directory inside the destination and its top-level entries
are then moved into place, so an interrupted extraction never looks complete; a marker file
records a finished extraction so that a second run skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import DataError


def _check_member_name(name: str, archive: Path) -> PurePosixPath:
    """The member's relative path, or a DataError if it could escape the destination."""
    normalized = name.replace("\\", "/")
    path = PurePosixPath(normalized)
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":") or path.is_absolute():
        raise DataError(f"{archive.name}: member {name!r} has an absolute path; refusing to extract the archive")
    if ".." in path.parts:
        raise DataError(f"{archive.name}: member {name!r} would be written outside the destination (path "
                        "traversal); refusing to extract the archive")
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


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike, *, progress: bool = True) -> list[str]:
    """Extract a zip or tar archive into `dest` safely; return the top-level names it created."""
    from tqdm import tqdm

    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    if is_extracted(archive, dest):
        return []
    staging = dest / f".nb360-extract-{archive.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                members = _check_zip(zf, archive, dest)
                for m in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not progress):
                    zf.extract(m, staging)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tar:
                members = _check_tar(tar, archive, dest)
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                for m in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not progress):
                    tar.extract(m, staging, **kwargs)
        else:
            raise DataError(f"{archive} is neither a zip nor a tar archive (corrupt or truncated?); delete it and "
                            "download it again")
        created = sorted(p.name for p in staging.iterdir())
        for name in created:
            target = dest / name
            # A previous, unfinished extraction of this archive may have left the entry; replace it.
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(staging / name, target)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise DataError(f"cannot extract {archive}: {exc} (the archive is corrupt or truncated; delete it and "
                        "download it again)") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    st = archive.stat()
    _marker(archive, dest).write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                                  "entries": created}) + "\n")
    return created
