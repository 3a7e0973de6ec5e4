"""The bookkeeping of a data folder: the record of checksums first seen there, and the locks around it.

`nb360-downloads.json` holds the sha256 of every file whose task card publishes none, recorded at
its first download; later checks compare against it, and every report labels such a file
UNVERIFIED (first seen). Locks are files that are never deleted (deleting a lock file races with
its next user); flock on them serialises downloads of one file and updates of the record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ..errors import DataError

MANIFEST = "nb360-downloads.json"
LOCK_WAIT = 6 * 3600.0  # seconds to wait for another process downloading the same file
ChecksumKind = Literal["published", "recorded", "recorded-now", "none"]
UNVERIFIED = "UNVERIFIED (first seen)"


def checksum_label(kind: ChecksumKind) -> str:
    """How a file's check is reported: only a published checksum verifies; a recorded one was first seen here."""
    return {"published": "verified against the published checksum",
            "recorded": f"{UNVERIFIED}: matches the sha256 recorded at its first download; nothing is published to "
                        "check that copy against",
            "recorded-now": f"{UNVERIFIED}: no checksum is published; this copy's sha256 was recorded as the "
                            "reference for later checks",
            "none": f"{UNVERIFIED}: no checksum published or recorded"}[kind]


def read_manifest(root: Path) -> dict:
    """The checksums recorded for files that publish none (empty when there is no record)."""
    path = root / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); delete it to record the checksums again") from exc
    return data.get("files", {}) if isinstance(data, dict) else {}


@contextlib.contextmanager
def locked(lock_file: Path, what: str, wait: float = LOCK_WAIT) -> Iterator[bool]:
    """Hold an exclusive lock on `lock_file` (created, never deleted); yields whether it had to wait."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        waited = False
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DataError(f"another nb360 process has held {lock_file} for over {wait:.0f} s while "
                                    f"{what}; if none runs, delete the lock file and retry") from None
                waited = True
                time.sleep(0.2)
        yield waited
    finally:
        os.close(fd)  # releases the lock


def record(root: Path, name: str, entry: dict) -> None:
    with locked(root / f".{MANIFEST}.lock", f"updating {MANIFEST}"):  # concurrent downloads lose no record
        files = read_manifest(root)
        files[name] = entry
        path = root / MANIFEST
        tmp = path.with_name(f".{MANIFEST}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"files": files}, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)


