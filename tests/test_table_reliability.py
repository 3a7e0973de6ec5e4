"""The table reader under misuse and damage: closed tables, files changed on disk, FIFOs, flipped bits.

Every case that once crashed the interpreter (segfault, SIGBUS) or hung runs in a subprocess with a
timeout, so a regression fails the test instead of killing pytest. Tables are the real NATS-Bench
fixture records imported (fixture_table) or SYNTHETIC ones written here.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nb360 import _table
from nb360.errors import ClosedTableError, DataError, MissingValueError, Nb360Error
from nb360.table import RunData, Table, write_table
from nb360.table.upgrade import upgrade_table

KW = {"seed": 777, "hp": "200", "task": "cifar100"}


def run_isolated(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter; fail on a signal or a hang, return the process otherwise."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def corrupt(path: Path, out: Path, offset: int, xor: int = 0x01) -> Path:
    data = bytearray(path.read_bytes())
    data[offset] ^= xor
    out.write_bytes(bytes(data))
    return out


def dataset_offset(path: Path, name: str, run: int = 0) -> int:
    t = Table.open(path)
    return t._file.dataset_info(t.runs[run].datasets[name])["offset"]


def synthetic_table(path: Path, *, nan_at: tuple[int, int, int] | None = None) -> Path:
    """A SYNTHETIC 6-arch, 2-metric, 5-epoch table; nan_at=(row, metric, epoch) records a NaN there (a divergence)."""
    rng = np.random.default_rng(0)
    curves = rng.uniform(0, 1, (6, 2, 5)).astype(np.float32)
    present = np.ones(curves.shape, dtype=bool)
    present[5, :, 3:] = False
    if nan_at is not None:
        curves[nan_at] = np.nan
    run = RunData(task="toy", hp="5", seed=0, metrics=["train-loss", "ori-test-accuracy"], scalars=["params"],
                  arch_ids=np.arange(6), curves=curves, curves_present=present,
                  scalar_values=rng.uniform(0, 1, (6, 1)), scalars_present=np.ones((6, 1), dtype=bool))
    from nb360.space import nb201

    return write_table(path, [run], archs=[nb201.arch_str(i) for i in range(nb201.NUM_ARCHS)])


# ---------------------------------------------------------------------------------------------- closed tables
def test_closed_table_raises_instead_of_crashing(fixture_table) -> None:
    proc = run_isolated(f"""
        from nb360.table import Table
        from nb360.errors import ClosedTableError
        t = Table.open({str(fixture_table)!r})
        t.query(11, "train-loss", **{KW!r})
        run = t._select("cifar100", "200", 777)[0]
        t.close()
        for call in (lambda: t.query(11, "train-loss", **{KW!r}),
                     lambda: t.query_batch([0, 11], "train-loss", **{KW!r}), lambda: t.metrics(task="cifar100"),
                     lambda: t.arrays(**{KW!r}), lambda: run.view.get(11, 0, 0),
                     lambda: run.view.gather([11], [0], [0]), t.verify):
            try:
                call()
            except ClosedTableError as exc:
                assert "closed" in str(exc)
            else:
                raise SystemExit("a closed table answered")
        print("ok")
    """)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


def test_runview_of_none_is_an_error_not_a_crash() -> None:
    proc = run_isolated("""
        from nb360 import _table
        try:
            _table.RunView(None, [0, 0, 0, 0, 0], 0, 0, "x")
        except (ValueError, TypeError) as exc:
            print("refused:", exc)
    """)
    assert proc.returncode == 0 and "refused" in proc.stdout, proc.stderr


def test_closing_while_other_threads_query(fixture_table) -> None:
    t = Table.open(fixture_table)
    expected = t.query(11, "train-loss", 5, **KW)
    outcomes: list[str] = []
    start = threading.Barrier(5)

    def worker() -> None:
        start.wait()
        for _ in range(20_000):
            try:
                assert t.query(11, "train-loss", 5, **KW) == expected
                t.query_batch(np.arange(0, 300), "train-loss", 5, missing="nan", **KW)
            except ClosedTableError:
                outcomes.append("closed")
                return
        outcomes.append("finished")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    start.wait()
    t.close()
    for th in threads:
        th.join()
    assert len(outcomes) == 4 and "closed" in outcomes


# ---------------------------------------------------------------------------------------------- changed on disk
def test_table_truncated_while_open_raises(fixture_table, tmp_path) -> None:
    path = tmp_path / "t.h5"
    shutil.copy(fixture_table, path)
    proc = run_isolated(f"""
        import os
        from nb360.table import Table
        from nb360.errors import DataError
        t = Table.open({str(path)!r})
        t.query(11, "train-loss", **{KW!r})
        offset = t._file.dataset_info(t.runs[-1].datasets["curves"])["offset"]
        os.truncate({str(path)!r}, 8192)
        for call in (lambda: t.query(11, "train-loss", **{KW!r}), lambda: t.query(0, "train-loss", 3, **{KW!r}),
                     lambda: t.query_batch([0, 11, 284], "train-loss", **{KW!r})):
            try:
                call()
            except DataError as exc:
                assert "changed on disk" in str(exc), exc
            else:
                raise SystemExit("a truncated table answered")
        # the SIGBUS guard itself: a read of a page past the new end, with no fstat check before it
        try:
            t._file._read_mapped(offset)
        except DataError as exc:
            assert "shrank" in str(exc), exc
        else:
            raise SystemExit("no fault past the end")
        print("ok")
    """)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr


def test_table_overwritten_in_place_raises(fixture_table, nb360_layout_table, tmp_path) -> None:
    path = tmp_path / "t.h5"
    shutil.copy(fixture_table, path)
    _, other = nb360_layout_table
    proc = run_isolated(f"""
        import shutil
        import time
        from nb360.table import Table
        from nb360.errors import DataError
        t = Table.open({str(path)!r})
        before = t.query(11, "train-loss", **{KW!r})
        shutil.copyfile({str(other)!r}, {str(path)!r})  # what `cp new.h5 table.h5` does: truncate, then write
        time.sleep(0.01)  # single lookups re-check the file at most once per millisecond
        try:
            t.query(11, "train-loss", **{KW!r})
        except DataError as exc:
            assert "changed on disk" in str(exc) and "renaming" in str(exc), exc
            print("ok")
    """)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr


def test_same_size_overwrite_in_place_raises(fixture_table, tmp_path) -> None:
    path = tmp_path / "t.h5"
    shutil.copy(fixture_table, path)
    t = Table.open(path)
    t.query(11, "train-loss", 3, **KW)
    offset = t._file.dataset_info(t._select("cifar100", "200", 777)[0].info.datasets["curves"])["offset"]
    time.sleep(0.02)  # file times tick with the kernel's coarse clock (1-10 ms)
    with open(path, "r+b") as f:  # same size, other bytes in an already checked chunk
        f.seek(offset + 4 * 3)
        f.write(b"\x00\x00\x80\x7f")
    time.sleep(0.01)
    with pytest.raises(DataError, match="changed on disk"):
        t.query(11, "train-loss", 3, **KW)
    with pytest.raises(DataError, match="changed on disk"):  # latched
        t.query_batch([0], "train-loss", 0, **KW)


def test_table_replaced_by_rename_or_deleted_keeps_the_old_content(fixture_table, nb360_layout_table, tmp_path) -> None:
    path = tmp_path / "t.h5"
    shutil.copy(fixture_table, path)
    t = Table.open(path)
    before = t.query(11, "train-loss", 3, **KW)
    staged = tmp_path / "new.h5"
    shutil.copy(nb360_layout_table[1], staged)
    os.replace(staged, path)  # how nb360 writes tables: the open one keeps its inode
    assert t.query(11, "train-loss", 3, **KW) == before
    t.verify()  # checks the mapped file, not the new one at its path
    path.unlink()
    assert t.query(11, "train-loss", 3, **KW) == before


def test_fifo_is_refused_without_hanging(tmp_path) -> None:
    fifo = tmp_path / "table.h5"
    os.mkfifo(fifo)
    proc = run_isolated(f"""
        from nb360.table import Table
        from nb360.errors import DataError
        try:
            Table.open({str(fifo)!r})
        except DataError as exc:
            print(exc)
    """, timeout=30)
    assert "not a regular file" in proc.stdout, proc.stderr


# ---------------------------------------------------------------------------------------------- checksums
def test_index_flip_is_refused_at_open(fixture_table, tmp_path) -> None:
    t = Table.open(fixture_table)
    info = t._file.dataset_info(t._file.index_address)
    raw = fixture_table.read_bytes()
    at = raw.index(b'"train-loss"', info["offset"])  # rename a metric, as the probe did ('tpain-loss')
    broken = corrupt(fixture_table, tmp_path / "i.h5", at + 2, ord("r") ^ ord("p"))
    with pytest.raises(DataError, match="index .* fails its checksum"):
        Table.open(broken)


def test_flipped_value_is_never_returned(nb360_layout_table, tmp_path) -> None:
    _, path = nb360_layout_table
    broken = corrupt(path, tmp_path / "v.h5", dataset_offset(path, "curves") + 4 * 7, 0x40)
    t = Table.open(broken)
    for call in (lambda: t.query(0, "train-loss", 7), lambda: t.query_batch([0, 1], "train-loss", 7),
                 lambda: t.best("ori-test-accuracy"), lambda: t.arrays(), t.verify,
                 lambda: t.curve(0, "train-loss")):
        with pytest.raises(DataError, match="curves is corrupt"):
            call()
    # datasets away from the flip still answer, with the right values
    assert t.scalar(3, "params") == Table.open(path).scalar(3, "params")


def test_cleared_presence_byte_is_never_used(nb360_layout_table, tmp_path) -> None:
    _, path = nb360_layout_table
    broken = corrupt(path, tmp_path / "p.h5", dataset_offset(path, "curves_present") + 3, 0x01)
    t = Table.open(broken)
    m = t.metrics()[0]
    for call in (lambda: t.query(0, m, 3), lambda: t.query_batch(np.arange(40), m, 3),
                 lambda: t.best(m), lambda: t.curve(0, m, with_mask=True)):
        with pytest.raises(DataError, match="curves_present is corrupt"):
            call()


def test_recorded_nan_is_present_and_missing_is_absent(tmp_path) -> None:
    path = synthetic_table(tmp_path / "nan.h5", nan_at=(2, 0, 4))
    t = Table.open(path)
    assert np.isnan(t.query(2, "train-loss", 4))  # recorded: a diverged loss
    assert np.isnan(t.query_batch([2], "train-loss", 4, missing="raise"))[0]
    values, mask = t.curve(2, "train-loss", with_mask=True)
    assert mask.all() and np.isnan(values[4]) and not np.isnan(values[:4]).any()
    # a recorded arch with unrecorded epochs: the mask says so in every API
    values, mask = t.curve(5, "train-loss", with_mask=True)
    assert list(mask) == [True, True, True, False, False] and np.isnan(values[3:]).all()
    with pytest.raises(MissingValueError):
        t.query(5, "train-loss", 3)
    with pytest.raises(MissingValueError, match="1 of 2 requested values are not recorded"):
        t.query_batch([5, 5], "train-loss", [2, 3])
    np.testing.assert_array_equal(np.isnan(t.query_batch([5, 5, 2], "train-loss", [2, 3, 4], missing="nan")),
                                  [False, True, True])
    with pytest.raises(MissingValueError):
        t.query_batch([0, 6], "train-loss", 0)  # arch 6 is not recorded at all


def test_checksums_cover_every_chunk_of_every_run(fixture_table) -> None:
    import xxhash  # the reference implementation (test extra): nb360 hashes with its own C++ XXH64

    t = Table.open(fixture_table)
    data = fixture_table.read_bytes()
    assert _table.xxh64(b"") == xxhash.xxh64_intdigest(b"")
    for run in t.runs:
        sums = run.chunk_checksums
        d = t._file.dataset_info(sums["address"])
        stored = np.frombuffer(data, dtype="<u8", count=d["shape"][0], offset=d["offset"])
        assert f"{xxhash.xxh64_intdigest(stored.tobytes()):016x}" == sums["xxh64"]
        expected = []
        for name in ("arch_rows", "curves", "curves_present", "scalars", "scalars_present"):
            info = t._file.dataset_info(run.datasets[name])
            raw = data[info["offset"]:info["offset"] + info["nbytes"]]
            expected += [xxhash.xxh64_intdigest(raw[k:k + 65536]) for k in range(0, len(raw), 65536)]
        assert list(stored) == expected


# ---------------------------------------------------------------------------------------------- old tables
def downgrade(path: Path, out: Path) -> Path:
    """The table with a header of version 1 (what nb360 wrote before checksums)."""
    data = bytearray(path.read_bytes())
    head = b"NB360TBL" + struct.pack("<IIQ", 1, 1, struct.unpack_from("<Q", data, 16)[0])
    data[:60] = head + struct.pack("<I", _table.lookup3(head)) + bytes(32)
    out.write_bytes(bytes(data))
    return out


def test_version_1_tables_are_refused_until_upgraded(nb360_layout_table, tmp_path) -> None:
    from nb360.cli import main

    _, path = nb360_layout_table
    old = downgrade(path, tmp_path / "old.h5")
    with pytest.raises(DataError, match=r"header version 1.*nb360 table upgrade"):
        Table.open(old)
    legacy = Table.open(old, verify=False)  # readable, unchecked, when asked for explicitly
    assert legacy.query(3, "train-loss", 2) == Table.open(path).query(3, "train-loss", 2)
    assert main(["table", "upgrade", str(old)]) == 0
    upgraded = Table.open(old)
    upgraded.verify()
    for a, b in zip(upgraded.arrays(), Table.open(path).arrays()):
        np.testing.assert_array_equal(a, b)
    # a corrupt old table is refused, not certified
    bad = corrupt(downgrade(path, tmp_path / "bad.h5"), tmp_path / "bad2.h5", dataset_offset(path, "curves") + 9)
    with pytest.raises(DataError, match="curves is corrupt"):
        upgrade_table(bad)


def test_cli_user_errors_on_damaged_tables_exit_2(nb360_layout_table, tmp_path, capsys) -> None:
    from nb360.cli import main

    _, path = nb360_layout_table
    flipped = corrupt(path, tmp_path / "v.h5", dataset_offset(path, "curves") + 4 * 7, 0x40)
    assert main(["table", "info", "--verify", str(flipped)]) == 2
    assert main(["table", "query", str(flipped), "0", "--metric", "train-loss", "--epoch", "7"]) == 2
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(path.read_bytes()[:20_000])
    assert main(["table", "info", "--verify", str(truncated)]) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err and err.count("nb360: error:") == 3


def test_lookup_errors_are_nb360_errors() -> None:
    assert issubclass(_table.FormatError, DataError) and issubclass(_table.FileChangedError, DataError)
    assert issubclass(_table.ClosedError, ClosedTableError) and issubclass(ClosedTableError, Nb360Error)


def test_chunks_are_checked_one_by_one(tmp_path) -> None:
    """A SYNTHETIC table whose curves span several 64 KiB chunks: a flip fails only the chunk it is in."""
    from nb360.space import nb201

    rng = np.random.default_rng(1)
    curves = rng.uniform(0, 1, (400, 4, 30)).astype(np.float32)  # 192,000 bytes: chunks 0, 1, 2
    run = RunData(task="toy", hp="30", seed=0, metrics=["train-loss", "train-accuracy", "ori-test-loss",
                                                        "ori-test-accuracy"], scalars=[],
                  arch_ids=np.arange(400), curves=curves, curves_present=np.ones(curves.shape, dtype=bool),
                  scalar_values=np.zeros((400, 0)), scalars_present=np.zeros((400, 0), dtype=bool))
    path = write_table(tmp_path / "multi.h5", [run], archs=[nb201.arch_str(i) for i in range(nb201.NUM_ARCHS)])
    row_bytes = 4 * 30 * 4
    broken = corrupt(path, tmp_path / "broken.h5", dataset_offset(path, "curves") + 65536 + 100)  # chunk 1
    t = Table.open(broken)
    first, second, third = 0, 65536 // row_bytes + 1, 2 * 65536 // row_bytes + 1
    assert t.query(first, "train-loss", 3) == curves[first, 0, 3]
    assert t.query(third, "ori-test-accuracy", 29) == curves[third, 3, 29]
    with pytest.raises(DataError, match=r"curves is corrupt: its bytes \[65536, 131072\)"):
        t.query(second, "train-loss", 0)
    with pytest.raises(DataError, match="curves is corrupt"):
        t.query_batch(np.arange(400), "train-loss", 0)
    np.testing.assert_array_equal(t.query_batch([first, third], "train-loss", 5), curves[[first, third], 0, 5])
    good = Table.open(path)
    np.testing.assert_array_equal(good.arrays()[1], curves)
    np.testing.assert_array_equal(good.query_batch(np.arange(400), "ori-test-loss", np.arange(30)[:, None]),
                                  curves[:, 2, :].T)
