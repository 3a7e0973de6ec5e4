"""nb360.data.download and nb360.data.archive against a local HTTP server on 127.0.0.1.

The served files are random bytes made by the tests (synthetic fixtures, not task data). Routes:
/good/NAME (range requests honoured), /missing/NAME (404), /truncated/NAME (a shorter copy),
/corrupt/NAME (one byte flipped), /drop/NAME (the first response breaks off half way),
/norange/NAME (ignores Range), /html/NAME (a sign-in page); hostile ones: /endless/NAME (no length,
a body that never ends), /trickle/NAME (a byte every 50 ms), /stall/NAME (half the file, then
silence), /nolength/NAME (the first half, no Content-Length, then closes).
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from nb360.data import download as dl
from nb360.data.archive import extract_archive
from nb360.errors import DataError, InputError
from nb360.tasks.card import DataFile, Source

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        server = self.server
        server.log.append((self.path, self.headers.get("Range")))
        kind, _, name = self.path.lstrip("/").partition("/")
        data = server.files.get(name)
        if kind == "missing" or data is None:
            self._send(404, b"not found", "text/plain")
            return
        if kind == "html":
            self._send(200, b"<html>sign in</html>", "text/html; charset=utf-8")
            return
        if kind in ("endless", "trickle", "stall", "nolength"):
            self._hostile(kind, data)
            return
        if kind == "truncated":
            data = data[: len(data) // 2]
        if kind == "corrupt":
            data = bytearray(data)
            data[len(data) // 3] ^= 0xFF
            data = bytes(data)
        start = 0
        rng = self.headers.get("Range")
        if rng and kind != "norange":
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if kind == "drop" and self.path not in server.dropped:
            server.dropped.add(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)

    def _hostile(self, kind: str, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if kind in ("trickle", "stall"):
            self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            if kind == "endless":
                while not self.server.stopping.is_set():
                    self.wfile.write(data)
            elif kind == "trickle":
                for byte in data:
                    if self.server.stopping.wait(0.05):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
            elif kind == "stall":
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.server.stopping.wait(60)
            else:
                self.wfile.write(data[: len(data) // 2])
        except OSError:
            pass

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files = {"data.bin": PAYLOAD}
    httpd.log = []
    httpd.dropped = set()
    httpd.stopping = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()


def card_file(server, *routes: str, name: str = "data.bin", sha: str | None = SHA, size: int | None = len(PAYLOAD),
              extract: bool = False, dead: tuple[str, ...] = ()) -> DataFile:
    sources = tuple(Source(f"{server.url}/{r}/{name}", "dead" if r in dead else "live") for r in routes)
    return DataFile(name=name, size=size, sha256=sha, sources=sources, extract=extract)


def _get(root: Path, file: DataFile, **kw) -> dl.FileResult:
    return dl.download_file(file, root, progress=False, timeout=10, **kw)


def test_download_verifies_and_writes_atomically(server, tmp_path) -> None:
    result = _get(tmp_path, card_file(server, "good"))
    assert result.action == "downloaded" and result.checksum == "published" and not result.resumed
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert not (tmp_path / "data.bin.part").exists()
    verdict = dl.verify_file(card_file(server, "good"), tmp_path)
    assert verdict.status == "ok" and "published" in verdict.message
    # a second run finds the file and does not touch the network
    server.log.clear()
    again = _get(tmp_path, card_file(server, "good"))
    assert again.action == "present" and server.log == []


def test_404_on_the_first_mirror_falls_over_to_the_next(server, tmp_path) -> None:
    result = _get(tmp_path, card_file(server, "missing", "good"))
    assert result.source.endswith("/good/data.bin")
    assert any("HTTP 404" in n for n in result.notes)
    assert [p for p, _ in server.log] == ["/missing/data.bin", "/good/data.bin"]


def test_truncated_copy_is_refused(server, tmp_path) -> None:
    result = _get(tmp_path, card_file(server, "truncated", "good"))
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert any("serves 150000 bytes, expected 300000" in n for n in result.notes)
    with pytest.raises(DataError, match="truncated"):
        _get(tmp_path / "b", card_file(server, "truncated"))
    assert not (tmp_path / "b" / "data.bin").exists()


def test_corrupted_copy_is_refused_and_discarded(server, tmp_path) -> None:
    result = _get(tmp_path, card_file(server, "corrupt", "good"))
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert any("does not match the published" in n for n in result.notes)
    with pytest.raises(DataError, match="corrupt") as err:
        _get(tmp_path / "b", card_file(server, "corrupt"))
    assert "by hand" in str(err.value) and "nb360 data verify" in str(err.value)
    assert not (tmp_path / "b" / "data.bin").exists() and not (tmp_path / "b" / "data.bin.part").exists()


def test_dropped_connection_resumes_with_a_range_request(server, tmp_path) -> None:
    result = _get(tmp_path, card_file(server, "drop"))
    assert result.resumed and (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert server.log[0] == ("/drop/data.bin", None)
    assert server.log[1][1] is not None and server.log[1][1].startswith("bytes=")
    assert int(server.log[1][1].removeprefix("bytes=").rstrip("-")) > 0


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path) -> None:
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:1000])
    result = _get(tmp_path, card_file(server, "good"))
    assert result.resumed and server.log == [("/good/data.bin", "bytes=1000-")]
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert dl.verify_file(card_file(server, "good"), tmp_path).status == "ok"


def test_complete_part_file_is_verified_without_refetching(server, tmp_path) -> None:
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    result = _get(tmp_path, card_file(server, "good"))
    assert result.action == "downloaded" and server.log == []


def test_server_ignoring_range_restarts_from_zero(server, tmp_path) -> None:
    (tmp_path / "data.bin.part").write_bytes(b"x" * 1000)  # stale bytes must not survive
    _get(tmp_path, card_file(server, "norange"))
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_unpublished_checksum_is_recorded_and_used_later(server, tmp_path) -> None:
    file = card_file(server, "good", sha=None, size=None)
    result = _get(tmp_path, file)
    assert result.checksum == "recorded-now" and result.sha256 == SHA
    assert any("no sha256 is published" in n for n in result.notes)
    manifest = json.loads((tmp_path / dl.MANIFEST).read_text())
    assert manifest["files"]["data.bin"]["sha256"] == SHA
    assert manifest["files"]["data.bin"]["published_sha256"] is False
    verdict = dl.verify_file(file, tmp_path)
    assert verdict.status == "unverified" and "recorded at its first download" in verdict.message
    assert not result.verified and result.label.startswith("UNVERIFIED (first seen)")
    data = bytearray(PAYLOAD)
    data[5] ^= 1
    (tmp_path / "data.bin").write_bytes(bytes(data))
    assert dl.verify_file(file, tmp_path).status == "bad"
    # a corrupt copy on disk is replaced by a fresh verified download
    again = _get(tmp_path, file)
    assert again.action == "downloaded" and again.checksum == "recorded"
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_published_md5_is_checked(server, tmp_path) -> None:
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    file = DataFile("data.bin", len(PAYLOAD), None, (Source(f"{server.url}/good/data.bin", "live"),), md5=md5)
    result = _get(tmp_path, file)
    assert result.checksum == "published"
    wrong = DataFile("data.bin", len(PAYLOAD), None, (Source(f"{server.url}/good/data.bin", "live"),), md5="0" * 32)
    verdict = dl.verify_file(wrong, tmp_path)
    assert verdict.status == "bad" and "md5" in verdict.message
    with pytest.raises(DataError, match="md5"):
        _get(tmp_path / "b", wrong)


def test_verify_reports_missing_partial_and_unchecked(server, tmp_path) -> None:
    file = card_file(server, "good")
    assert dl.verify_file(file, tmp_path).status == "missing"
    (tmp_path / "data.bin.part").write_bytes(b"abc")
    assert "partial download" in dl.verify_file(file, tmp_path).message
    (tmp_path / "data.bin").write_bytes(PAYLOAD)
    unchecked = dl.verify_file(card_file(server, "good", sha=None, size=None), tmp_path)
    assert unchecked.status == "unchecked" and SHA in unchecked.message
    (tmp_path / "data.bin").write_bytes(PAYLOAD[:-1])
    assert "truncated" in dl.verify_file(file, tmp_path).message


def test_dead_sources_are_skipped_unless_asked(server, tmp_path) -> None:
    only_dead = card_file(server, "good", dead=("good",))
    with pytest.raises(DataError, match="include-dead"):
        _get(tmp_path, only_dead)
    assert server.log == []
    assert _get(tmp_path, only_dead, include_dead=True).action == "downloaded"


def test_html_page_is_not_taken_for_the_file(server, tmp_path) -> None:
    with pytest.raises(DataError, match="HTML page"):
        _get(tmp_path, card_file(server, "html"))
    assert not (tmp_path / "data.bin").exists()


def test_unreachable_server_and_bad_names(tmp_path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    file = DataFile("data.bin", 10, None, (Source(f"http://127.0.0.1:{port}/x", "live"),))
    with pytest.raises(DataError, match="cannot connect"):
        dl.download_file(file, tmp_path, progress=False, timeout=5)
    with pytest.raises(InputError, match="relative path"):
        dl.download_file(DataFile("../evil", 1, None, ()), tmp_path, progress=False)


# ----------------------------------------------------------------------------- archives

def _tar_bytes(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_archive_is_downloaded_and_extracted(server, tmp_path) -> None:
    blob = _tar_bytes({"task/a.npy": b"A" * 10, "task/sub/b.npy": b"B" * 20})
    server.files["data.tar.gz"] = blob
    file = card_file(server, "good", name="data.tar.gz", sha=hashlib.sha256(blob).hexdigest(), size=len(blob),
                     extract=True)
    _get(tmp_path, file)
    assert (tmp_path / "task" / "a.npy").read_bytes() == b"A" * 10
    assert (tmp_path / "task" / "sub" / "b.npy").read_bytes() == b"B" * 20
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".nb360-extract")]
    (tmp_path / "task" / "a.npy").write_bytes(b"changed")  # a second run does not extract again
    _get(tmp_path, file)
    assert (tmp_path / "task" / "a.npy").read_bytes() == b"changed"


@pytest.mark.parametrize("maker,members", [
    (_tar_bytes, {"ok.txt": b"x", "../evil.txt": b"pwned"}),
    (_tar_bytes, {"/tmp/nb360-evil-absolute.txt": b"pwned"}),
    (_zip_bytes, {"ok.txt": b"x", "../evil.txt": b"pwned"}),
    (_zip_bytes, {"a/../../evil.txt": b"pwned"}),
])
def test_path_traversal_member_is_refused(server, tmp_path, maker, members) -> None:
    blob = maker(members)
    server.files["bad.archive"] = blob
    root = tmp_path / "data"
    file = card_file(server, "good", name="bad.archive", sha=hashlib.sha256(blob).hexdigest(), size=len(blob),
                     extract=True)
    with pytest.raises(DataError, match="outside the destination|absolute path"):
        _get(root, file)
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/nb360-evil-absolute.txt").exists()
    assert not (root / "ok.txt").exists()  # refused before anything was written


def test_links_in_archives_are_refused(tmp_path) -> None:
    archive = tmp_path / "links.tar.gz"
    archive.write_bytes(_tar_bytes({"ok.txt": b"x"}, links={"link": "/etc/passwd"}))
    with pytest.raises(DataError, match="is a link"):
        extract_archive(archive, tmp_path / "out", progress=False)


def test_not_an_archive(tmp_path) -> None:
    bogus = tmp_path / "x.tar"
    bogus.write_bytes(b"definitely not an archive")
    with pytest.raises(DataError, match="neither a zip nor a tar"):
        extract_archive(bogus, tmp_path / "out", progress=False)


# ----------------------------------------------------------------------------- the command line

def test_cli_download_and_verify(server, tmp_path, monkeypatch, capsys) -> None:
    from nb360.cli import data as cli_data
    from nb360.cli import main

    files = (card_file(server, "missing", "good"), card_file(server, "good", name="other.bin", sha=None, size=None))
    server.files["other.bin"] = b"other bytes"
    monkeypatch.setattr(cli_data, "_task_files", lambda name: files)
    assert main(["data", "download", "sometask", "--root", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"data.bin: downloaded from {server.url}/good/data.bin" in out and "HTTP 404" in out
    assert "other.bin: downloaded" in out and "no sha256 is published" in out
    assert main(["data", "verify", "sometask", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ok        data.bin: matches the published checksum" in out
    assert "unverified other.bin: matches the sha256 recorded at its first download" in out
    assert "1 file(s) UNVERIFIED (first seen)" in out
    (tmp_path / "other.bin").write_bytes(b"tampered")
    assert main(["data", "verify", "sometask", "--root", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "bad       other.bin" in captured.out
    assert captured.err.count("\n") == 1 and "1 bad and 0 missing" in captured.err


def test_cli_download_failure_is_one_line(server, tmp_path, monkeypatch, capsys) -> None:
    from nb360.cli import data as cli_data
    from nb360.cli import main

    monkeypatch.setattr(cli_data, "_task_files", lambda name: (card_file(server, "missing"),))
    assert main(["data", "download", "sometask", "--root", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HTTP 404" in err and "by hand" in err
    assert f"`nb360 data verify sometask --root {tmp_path}`" in err  # the task named, not a placeholder


def test_cli_unknown_task(tmp_path, capsys) -> None:
    from nb360.cli import main

    assert main(["data", "download", "no-such-task", "--root", str(tmp_path)]) == 2
    assert "no-such-task" in capsys.readouterr().err


def test_no_extract_keeps_the_archive_packed(server, tmp_path) -> None:
    blob = _tar_bytes({"inside.txt": b"x"})
    server.files["pack.tar.gz"] = blob
    file = card_file(server, "good", name="pack.tar.gz", sha=hashlib.sha256(blob).hexdigest(), size=len(blob),
                     extract=True)
    _get(tmp_path, file, extract=False)
    assert (tmp_path / "pack.tar.gz").exists() and not (tmp_path / "inside.txt").exists()


def test_stale_partial_bytes_are_not_blamed_on_the_source(server, tmp_path) -> None:
    (tmp_path / "data.bin.part").write_bytes(b"\0" * 1000)  # wrong bytes left by an earlier run
    result = _get(tmp_path, card_file(server, "good"))
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD and not result.resumed
    assert [r for _, r in server.log] == ["bytes=1000-", None]


# ---------------------------------------------------------------------------------------------- hostile servers
def test_endless_body_is_cut_at_the_expected_size(server, tmp_path) -> None:
    with pytest.raises(DataError, match="sends more than the expected 300000 bytes"):
        _get(tmp_path, card_file(server, "endless"))
    assert not (tmp_path / "data.bin").exists()
    part = tmp_path / "data.bin.part"
    assert not part.exists() or part.stat().st_size <= len(PAYLOAD)


def test_trickling_server_is_timed_out_and_keeps_the_bytes(server, tmp_path) -> None:
    file = card_file(server, "trickle")
    with pytest.raises(DataError, match="stalled") as err:
        dl.download_file(file, tmp_path, progress=False, timeout=0.5, retries=0)
    part = tmp_path / "data.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD) and part.read_bytes() == PAYLOAD[:part.stat().st_size]
    assert "kept in" in str(err.value) and "resume" in str(err.value)
    # a later run resumes from the kept bytes
    good = card_file(server, "good")
    kept = part.stat().st_size
    assert _get(tmp_path, good).resumed and (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert ("/good/data.bin", f"bytes={kept}-") in server.log


def test_stall_after_some_data_keeps_it_and_says_so(server, tmp_path) -> None:
    with pytest.raises(DataError, match=r"stalled after 150000 bytes") as err:
        dl.download_file(card_file(server, "stall"), tmp_path, progress=False, timeout=0.5, retries=0)
    assert "before any data arrived" not in str(err.value)
    assert (tmp_path / "data.bin.part").read_bytes() == PAYLOAD[:150_000]


def test_no_length_and_no_published_checksum_is_labelled_unverified(server, tmp_path) -> None:
    file = card_file(server, "nolength", sha=None, size=None)
    result = _get(tmp_path, file)  # truncated, but nothing can tell: it must not be called verified
    assert result.size == 150_000 and not result.verified and "UNVERIFIED (first seen)" in result.label
    verdict = dl.verify_file(file, tmp_path)
    assert verdict.status == "unverified" and "no checksum is published" in verdict.message
    manifest = json.loads((tmp_path / dl.MANIFEST).read_text())
    assert manifest["files"]["data.bin"]["verified"] is False


def test_two_downloads_of_one_file_do_not_corrupt_it(server, tmp_path) -> None:
    import multiprocessing

    file = card_file(server, "good", sha=None, size=None)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_download_in_child, [(file, tmp_path)] * 2)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert sorted(r[0] for r in results) == ["downloaded", "present"] and {r[1] for r in results} == {SHA}


def _download_in_child(file: DataFile, root: Path) -> tuple[str, str]:
    result = dl.download_file(file, root, progress=False, timeout=10)
    return result.action, result.sha256


# ---------------------------------------------------------------------------------------------- extraction
def _tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_two_archives_into_one_folder_merge_and_lose_nothing(tmp_path) -> None:
    root = tmp_path / "root"
    first = _tar(tmp_path / "train.tar", {"data/train.npy": b"train", "data/shared.txt": b"same"})
    second = _tar(tmp_path / "test.tar", {"data/test.npy": b"test", "data/shared.txt": b"same"})
    extract_archive(first, root, progress=False)
    extract_archive(second, root, progress=False)
    assert sorted(p.name for p in (root / "data").iterdir()) == ["shared.txt", "test.npy", "train.npy"]
    assert (root / "data" / "train.npy").read_bytes() == b"train"


def test_a_clash_is_refused_and_nothing_is_replaced(tmp_path) -> None:
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "labels.csv").write_bytes(b"mine")
    archive = _tar(tmp_path / "a.tar", {"data/labels.csv": b"theirs", "data/new.npy": b"x"})
    with pytest.raises(DataError, match="would overwrite .*labels.csv.*other content"):
        extract_archive(archive, root, progress=False)
    assert (root / "data" / "labels.csv").read_bytes() == b"mine" and not (root / "data" / "new.npy").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".nb360-extract")]


def test_an_interrupted_extraction_of_the_same_archive_is_finished(tmp_path) -> None:
    root = tmp_path / "root"
    archive = _tar(tmp_path / "a.tar", {"data/x.npy": b"new"})
    (root / "data").mkdir(parents=True)
    (root / "data" / "x.npy").write_bytes(b"ne")  # half-moved by an earlier run that was killed
    (root / ".a.tar.extracting").write_text(json.dumps({"files": ["data/x.npy"]}))
    extract_archive(archive, root, progress=False)
    assert (root / "data" / "x.npy").read_bytes() == b"new" and not (root / ".a.tar.extracting").exists()


@pytest.mark.parametrize("name", ["nb360-downloads.json", ".data.bin.nb360-lock", "data.bin.part",
                                  ".other.tar.extracted"])
def test_archive_cannot_write_nb360_bookkeeping(tmp_path, name) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "nb360-downloads.json").write_text('{"files": {}}')
    archive = _tar(tmp_path / "a.tar", {name: b'{"files": {"x": {"sha256": "forged"}}}'})
    with pytest.raises(DataError, match="bookkeeping"):
        extract_archive(archive, root, progress=False)
    assert (root / "nb360-downloads.json").read_text() == '{"files": {}}'


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_decompression_bombs_are_refused(tmp_path, kind) -> None:
    zeros = bytes(64 << 20)  # 64 MiB of zeros pack into ~64 KiB: a 1000x ratio
    if kind == "zip":
        archive = tmp_path / "bomb.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("a.bin", zeros)
    else:
        archive = _tar(tmp_path / "bomb.tar.gz", {"a.bin": zeros}, "w:gz")
    assert archive.stat().st_size < 1 << 20
    with pytest.raises(DataError, match="decompression bomb"):
        extract_archive(archive, tmp_path / "out", progress=False, min_allowance=1 << 20)
    assert not (tmp_path / "out" / "a.bin").exists()
