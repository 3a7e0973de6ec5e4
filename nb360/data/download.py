"""Download and verify a task's released data files (`DataFile` entries of its task card).

* tries the card's sources in order (those marked dead only when asked), falling over to the
  next on any failure, and says what went wrong with each;
* resumable: bytes go to `<name>.part` and a retry or a later run continues with an HTTP range
  request (a server that ignores the range restarts the file from zero);
* verifies the size and the sha256; where the card publishes no sha256, the first download's
  sha256 is recorded in `nb360-downloads.json` in the data directory, and `verify` checks later
  copies against that record; such a file is labelled UNVERIFIED (first seen) wherever it is
  reported, since nothing published says its first copy was whole;
* atomic: the file appears under its name only after it verified (`.part`, then rename);
* locked: a second process downloading the same file into the same folder waits for the first
  (and then finds the file present), and the checksum record is updated under its own lock;
* bounded: never more bytes than the expected size (the card's, else the server's Content-Length);
  a transfer that stalls (less than STALL_BYTES in `timeout` seconds, e.g. a server trickling a
  byte a second) is cut and resumed later from the bytes that arrived, which are kept;
* archives (`extract = true`) are unpacked safely (`nb360.data.archive`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Literal

from ..errors import DataError, InputError
from ..tasks.card import DataFile, Source
from ._records import MANIFEST, UNVERIFIED, ChecksumKind, checksum_label, locked, read_manifest, record

__all__ = ["MANIFEST", "UNVERIFIED", "FileResult", "VerifyResult", "checksum_label", "download_file", "download_files",
           "read_manifest", "sha256_of", "verify_file", "verify_files"]

CHUNK = 1 << 20
READ = 1 << 16  # one socket read: bytes reach the .part file as they arrive
STALL_BYTES = 1024  # a transfer delivering less than this in `timeout` seconds has stalled


@dataclass(frozen=True)
class FileResult:
    """What happened to one file."""

    name: str
    path: Path
    action: Literal["downloaded", "present"]
    sha256: str
    size: int
    checksum: ChecksumKind  # what the file was checked against (a published sha256 or md5, or a recorded sha256)
    source: str | None = None
    resumed: bool = False
    notes: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        """True only when a published checksum matched."""
        return self.checksum == "published"

    @property
    def label(self) -> str:
        """What the check was worth, in words (UNVERIFIED unless a published checksum matched)."""
        return checksum_label(self.checksum)


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on one file already on disk ("unverified": it matches only a sha256 recorded here)."""

    name: str
    path: Path
    status: Literal["ok", "unverified", "missing", "bad", "unchecked"]
    message: str
    checksum: ChecksumKind = "none"


@dataclass
class _Attempt:
    failures: list[str] = field(default_factory=list)
    resumed: bool = False


class _SourceFailed(Exception):
    """This source cannot deliver the file; try the next one."""


class _Retry(Exception):
    """The transfer broke off after making progress; resume from the same source."""


# ----------------------------------------------------------------------------- small helpers

def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise InputError(f"data file name {name!r} must be a relative path inside the data directory")
    return path


def _digests(path: Path, *, progress: bool = False) -> tuple[str, str]:
    """(sha256, md5) of a file in one pass over 1 MiB blocks (with a progress bar on request)."""
    from tqdm import tqdm

    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                                      desc=f"checksum {path.name}", disable=not progress, leave=False) as bar:
        for block in iter(lambda: fh.read(CHUNK), b""):
            sha.update(block)
            md5.update(block)
            bar.update(len(block))
    return sha.hexdigest(), md5.hexdigest()


def sha256_of(path: Path, *, progress: bool = False) -> str:
    """The sha256 of a file."""
    return _digests(path, progress=progress)[0]


def _expected_sha(file: DataFile, root: Path) -> tuple[str | None, ChecksumKind]:
    if file.sha256:
        return file.sha256.lower(), "published"
    entry = read_manifest(root).get(file.name)
    if entry and entry.get("sha256"):
        return entry["sha256"], "recorded"
    return None, "none"


def _check_file(path: Path, file: DataFile, root: Path, *, progress: bool) -> tuple[str | None, str, ChecksumKind]:
    """(problem or None, sha256, what it was checked against) for a complete file on disk.

    Checks the size, the published md5 where the card has one (CIFAR-100's), and the published
    sha256 or else the one recorded at the first download.
    """
    size = path.stat().st_size
    if file.size is not None and size != file.size:
        kind = "truncated" if size < file.size else "too long"
        return f"size {size} bytes, expected {file.size} ({kind})", "", "none"
    digest, md5 = _digests(path, progress=progress)
    published_md5 = (getattr(file, "md5", None) or "").lower()
    if published_md5 and md5 != published_md5:
        return f"md5 {md5} does not match the published {published_md5} (corrupt or a different version)", digest, \
            "published"
    expected, kind = _expected_sha(file, root)
    if expected is not None and digest != expected:
        return (f"sha256 {digest[:16]}... does not match the {kind} {expected[:16]}... (corrupt or a different "
                "version)"), digest, kind
    if kind == "none" and published_md5:
        kind = "published"  # the published md5 matched
    return None, digest, kind


# ----------------------------------------------------------------------------- one transfer

def _transfer(url: str, part: Path, file: DataFile, *, timeout: float, progress: bool, attempt: _Attempt) -> None:
    """Fetch `url` into `part`, continuing from its current size. Raises _Retry or _SourceFailed."""
    from tqdm import tqdm

    from .. import __version__

    offset = part.stat().st_size if part.exists() else 0
    if file.size is not None and offset > file.size:
        part.unlink()
        offset = 0
    if file.size is not None and offset == file.size:
        return  # a complete .part from an earlier run: only verification is left
    headers = {"User-Agent": f"nb360/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (URLs come from task cards)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Nothing left to send from `offset`: the .part is complete (or longer than the file).
            return
        raise _SourceFailed(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _SourceFailed(f"cannot connect ({reason})") from None
    with response:
        status = getattr(response, "status", 200)
        content_type = response.headers.get("Content-Type", "") if response.headers else ""
        if "text/html" in content_type and not file.name.endswith((".html", ".htm")):
            raise _SourceFailed("returned an HTML page instead of the file (a sign-in, consent or folder page?)")
        if offset and status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                raise _SourceFailed(f"answered the range request with Content-Range {content_range!r}")
            attempt.resumed = True
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # 200: the server sends the whole file (it ignored the range)
        length = response.headers.get("Content-Length")
        remaining = int(length) if length is not None and length.isdigit() else None
        if file.size is not None and remaining is not None and offset + remaining != file.size:
            raise _SourceFailed(f"serves {offset + remaining} bytes, expected {file.size} (a truncated or "
                                "different file)")
        total = file.size if file.size is not None else (offset + remaining if remaining is not None else None)
        received = 0
        window_start, window_bytes = time.monotonic(), 0
        with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=file.name, disable=not progress) as bar:
            try:
                while True:
                    # Never more than the expected size: a server sending an endless body is cut off.
                    want = READ if total is None else min(READ, total - offset - received)
                    if want <= 0:
                        if response.read1(1):
                            raise _SourceFailed(f"sends more than the expected {total} bytes (a different file or a "
                                                "broken server); nothing beyond that size was kept")
                        break
                    block = response.read1(want)  # what has arrived, at most `want`: written at once, never lost
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    window_bytes += len(block)
                    bar.update(len(block))
                    now = time.monotonic()
                    if now - window_start >= timeout:  # a trickle (1 byte/s) never trips the socket timeout
                        if window_bytes < STALL_BYTES:
                            raise TimeoutError(f"less than {STALL_BYTES} bytes in {timeout:.0f} s")
                        window_start, window_bytes = now, 0
            except (OSError, http.client.HTTPException) as exc:  # timeouts are OSErrors
                out.flush()
                why = "stalled" if isinstance(exc, TimeoutError) else f"connection lost ({type(exc).__name__})"
                if received:
                    raise _Retry(f"{why} after {offset + received} bytes (kept in {part.name} to resume)") from None
                raise _SourceFailed(f"{why} before any data arrived" + (
                    f" (the {offset} bytes of {part.name} from before are kept)" if offset else "")) from None
    if remaining is not None and received < remaining:
        if received:
            raise _Retry(f"connection closed after {offset + received} of {offset + remaining} bytes")
        raise _SourceFailed("connection closed before any data arrived")


# ----------------------------------------------------------------------------- the public API

def download_file(file: DataFile, root: str | os.PathLike, *, progress: bool = True, timeout: float = 60.0,
                  include_dead: bool = False, retries: int = 3, extract: bool = True,
                  task: str | None = None) -> FileResult:
    """Download one data file into `root` (resuming, verifying, atomic); extract it if it is an archive.

    `retries` is how often a transfer that broke off after making progress is resumed from the
    same source before the next source is tried; `extract=False` keeps archives packed.
    """
    root = Path(root)
    rel = _safe_name(file.name)
    dest = root / rel
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the data directory {dest.parent}: {exc}") from exc
    # One download of a file into a folder at a time: a second process waits, then finds it present.
    with locked(dest.with_name(f".{dest.name}.nb360-lock"), f"downloading {file.name}") as waited:
        result = _downloadlocked(file, root, dest, progress=progress, timeout=timeout, include_dead=include_dead,
                                  retries=retries, extract=extract, task=task)
    if waited:
        result = replace(result, notes=(*result.notes, "waited for another nb360 process downloading the same file"))
    return result


def _downloadlocked(file: DataFile, root: Path, dest: Path, *, progress: bool, timeout: float, include_dead: bool,
                     retries: int, extract: bool, task: str | None) -> FileResult:
    if dest.exists():
        problem, digest, kind = _check_file(dest, file, root, progress=progress)
        if problem is None:
            notes: tuple[str, ...] = ()
            if kind == "none":
                kind = "recorded-now"
                record(root, file.name, {"sha256": digest, "size": dest.stat().st_size, "source": None,
                                          "recorded": _now(), "published_sha256": False})
                notes = (f"no sha256 is published for {file.name}; recorded the present file's sha256 {digest}",)
            if extract:
                _maybe_extract(file, dest, root, progress)
            return FileResult(file.name, dest, "present", digest, dest.stat().st_size, kind, notes=notes)
        # A bad copy stays in place until a good one has been downloaded and verified.

    sources = [s for s in file.sources if include_dead or s.status != "dead"]
    skipped_dead = [s for s in file.sources if s not in sources]
    if not sources:
        raise DataError(_manual_message(file, dest, ["every source on the card is marked dead"], skipped_dead, task))
    part = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    for source in sources:
        attempt = _Attempt()
        try:
            digest, kind = _fetch_and_check(source.url, part, file, root, attempt, timeout=timeout,
                                            progress=progress, retries=retries)
        except _SourceFailed as exc:
            failures.append(f"{source.url}: {exc}")
            continue
        notes = []
        if kind == "none":
            kind = "recorded-now"
            notes.append(f"no sha256 is published for {file.name}; recorded the downloaded file's sha256 {digest} "
                         f"in {root / MANIFEST} (later checks compare against it)")
        size = part.stat().st_size
        os.replace(part, dest)
        if kind == "recorded-now":
            record(root, file.name, {"sha256": digest, "size": size, "source": source.url, "recorded": _now(),
                                      "published_sha256": False, "verified": False,
                                      "note": "first seen: nothing published says this copy is whole"})
        if failures:
            notes.insert(0, "earlier sources failed: " + "; ".join(failures))
        if extract:
            _maybe_extract(file, dest, root, progress)
        return FileResult(file.name, dest, "downloaded", digest, size, kind, source=source.url,
                          resumed=attempt.resumed, notes=tuple(notes))
    part_size = part.stat().st_size if part.exists() else 0
    if part_size:
        failures.append(f"the {part_size} bytes received are kept in {part}: rerun the same command to resume")
    raise DataError(_manual_message(file, dest, failures, skipped_dead, task))


def _fetch_and_check(url: str, part: Path, file: DataFile, root: Path, attempt: _Attempt, *, timeout: float,
                     progress: bool, retries: int) -> tuple[str, ChecksumKind]:
    """Fetch `url` into `part` (resuming) and verify it; (sha256, checksum kind) or _SourceFailed."""
    inherited = part.exists() and part.stat().st_size > 0  # bytes from an earlier run or source
    while True:
        for tries in range(retries + 1):
            try:
                _transfer(url, part, file, timeout=timeout, progress=progress, attempt=attempt)
                break
            except _Retry as exc:
                if tries == retries:
                    raise _SourceFailed(f"{exc}; gave up after {retries + 1} attempts") from None
        if not part.exists():
            raise _SourceFailed("sent no data")
        problem, digest, kind = _check_file(part, file, root, progress=progress)
        if problem is None:
            return digest, kind
        part.unlink()  # corrupt bytes cannot be resumed from
        if not inherited:
            raise _SourceFailed(problem)
        # The bad bytes may be the earlier partial file's, not this source's: fetch it once from zero.
        inherited = False
        attempt.resumed = False


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _maybe_extract(file: DataFile, dest: Path, root: Path, progress: bool) -> None:
    if file.extract:
        from .archive import extract_archive

        extract_archive(dest, root, progress=progress)


def _manual_message(file: DataFile, dest: Path, failures: list[str], skipped: list[Source],
                    task: str | None) -> str:
    tried = " | ".join(failures) if failures else "no source tried"
    dead = f"; skipped {len(skipped)} source(s) marked dead (pass --include-dead to try them)" if skipped else ""
    urls = ", ".join(s.url for s in file.sources) or "none listed"
    message = (f"could not download {file.name}: {tried}{dead}. Download it by hand (sources: {urls}), put it at "
               f"{dest}, then check it with `nb360 data verify {task or '<task>'} --root {dest.parent}`")
    if task == "darcyflow":
        message += f"; or generate a stand-in: `nb360 data generate darcyflow --root {dest.parent}`"
    return message


def download_files(files: Iterable[DataFile], root: str | os.PathLike, **options) -> list[FileResult]:
    """Download every file (see download_file); stops at the first file that cannot be had."""
    return [download_file(f, root, **options) for f in files]


def verify_file(file: DataFile, root: str | os.PathLike, *, progress: bool = False) -> VerifyResult:
    """Check one file on disk against the card's size and sha256 (or the sha256 recorded at download)."""
    root = Path(root)
    path = root / _safe_name(file.name)
    if not path.exists():
        partial = path.with_name(path.name + ".part")
        hint = " (a partial download is there: rerun `nb360 data download` to resume it)" if partial.exists() else ""
        return VerifyResult(file.name, path, "missing", f"not downloaded{hint}")
    problem, digest, kind = _check_file(path, file, root, progress=progress)
    if problem is not None:
        return VerifyResult(file.name, path, "bad", problem + "; delete it and download it again", kind)
    if kind == "none":
        return VerifyResult(file.name, path, "unchecked",
                            f"sha256 {digest}: none is published and none was recorded at download, so there is "
                            "nothing to compare with", kind)
    if kind == "published":
        return VerifyResult(file.name, path, "ok", "matches the published checksum", kind)
    return VerifyResult(file.name, path, "unverified",
                        f"matches the sha256 recorded at its first download ({MANIFEST}), which is all there is: no "
                        "checksum is published, so a copy that was already truncated or altered then would pass",
                        kind)


def verify_files(files: Iterable[DataFile], root: str | os.PathLike, *, progress: bool = False) -> list[VerifyResult]:
    """Verify every file (see verify_file)."""
    return [verify_file(f, root, progress=progress) for f in files]
