"""The C++ table reader on bad files: clear nb360 errors, never a crash (plus a seeded fuzz campaign)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from nb360 import _table
from nb360.errors import DataError
from nb360.table import Table


def rewrite_header(path: Path, out: Path, schema: int) -> None:
    """A copy of the table whose (valid, checksummed) header names another schema version."""
    from nb360.table.checksums import header

    data = bytearray(path.read_bytes())
    index = bytes(_table.TableFile(str(path)).index_json())
    head = header(schema, struct.unpack_from("<Q", data, 16)[0], index)
    data[:len(head)] = head
    out.write_bytes(bytes(data))


def test_lookup3_matches_hdf5_checksums(fixture_table) -> None:
    # The superblock (v3) ends with HDF5's own lookup3 checksum of its first 44 bytes.
    sb = fixture_table.read_bytes()[4096:4096 + 48]
    assert _table.lookup3(sb[:44]) == struct.unpack("<I", sb[44:48])[0]
    assert _table.lookup3(b"") == 0xDEADBEEF


def test_truncated_table(fixture_table, tmp_path) -> None:
    data = fixture_table.read_bytes()
    for cut in (100, 5000, len(data) // 2, len(data) - 1):
        p = tmp_path / f"cut{cut}.h5"
        p.write_bytes(data[:cut])
        with pytest.raises(DataError, match="truncated|too small"):
            Table.open(p)


def test_not_a_table(tmp_path) -> None:
    p = tmp_path / "random.bin"
    p.write_bytes(np.random.default_rng(0).bytes(10_000))
    with pytest.raises(DataError, match="not an nb360 table"):
        Table.open(p)
    h5 = tmp_path / "plain.h5"
    with h5py.File(h5, "w") as f:
        f["x"] = np.arange(10_000)
    with pytest.raises(DataError, match="HDF5 file without the nb360 header.*nb360 table import"):
        Table.open(h5)


def test_missing_file_and_directory(tmp_path) -> None:
    with pytest.raises(DataError, match="cannot open"):
        Table.open(tmp_path / "nope.h5")
    with pytest.raises(DataError, match="not a regular file"):
        Table.open(tmp_path)


def test_other_schema_version(fixture_table, tmp_path) -> None:
    p = tmp_path / "v2.h5"
    rewrite_header(fixture_table, p, schema=2)
    with pytest.raises(DataError, match="schema version 2 but this nb360 reads version 1"):
        Table.open(p)


def test_corrupt_header_and_metadata(fixture_table, tmp_path) -> None:
    data = bytearray(fixture_table.read_bytes())
    data[20] ^= 1
    (tmp_path / "h.h5").write_bytes(bytes(data))
    with pytest.raises(DataError, match="header .* is corrupt"):
        Table.open(tmp_path / "h.h5")
    t = Table.open(fixture_table)
    address = t.runs[0].datasets["curves"]
    data = bytearray(fixture_table.read_bytes())
    data[4096 + address + 20] ^= 0x10  # inside the dataset's object header
    (tmp_path / "o.h5").write_bytes(bytes(data))
    broken = Table.open(tmp_path / "o.h5")  # opening reads only the index...
    run = broken.runs[0]
    with pytest.raises(DataError, match="checksum"):  # ...the run's headers are checked on first use
        broken.query(0, run.metrics[0], hp=run.hp, task=run.task, seed=run.seed)


def _multichunk_table(path: Path) -> Path:
    """A SYNTHETIC table of two seeds whose curves span several 64 KiB chunks (the fixture's fit in one)."""
    from nb360.space import nb201
    from nb360.table import RunData, write_table

    runs = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        curves = rng.uniform(0, 1, (400, 3, 40)).astype(np.float32)  # 192,000 bytes: three chunks
        present = rng.uniform(size=curves.shape) > 0.05
        runs.append(RunData(task="toy", hp="40", seed=seed, metrics=["train-loss", "ori-test-loss",
                                                                     "ori-test-accuracy"], scalars=["params"],
                            arch_ids=np.arange(400), curves=curves, curves_present=present,
                            scalar_values=rng.uniform(size=(400, 1)), scalars_present=np.ones((400, 1), dtype=bool)))
    return write_table(path, runs, archs=[nb201.arch_str(i) for i in range(nb201.NUM_ARCHS)])


@pytest.mark.parametrize(("which", "mutants"), [("fixture", 200), ("multichunk", 100)])
def test_fuzz_mutated_tables_each_in_a_subprocess(fixture_table, tmp_path, which, mutants) -> None:
    """Seeded mutants (flips, zeroed spans, truncations, forged sizes), each opened and queried in its own forked
    process with an alarm: no signal, no hang, no internal error, no value that differs from the intact table's
    (tests/fuzz_table.py). On the real fixture records, and on a table whose datasets span several chunks."""
    table = fixture_table if which == "fixture" else _multichunk_table(tmp_path / "multi.h5")
    script = Path(__file__).with_name("fuzz_table.py")
    proc = subprocess.run([sys.executable, str(script), str(table), "--iterations", str(mutants), "--seed", "7",
                           "--timeout", "30"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"fuzzing failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    result = json.loads(proc.stdout)
    assert result["mutants"] == mutants and not result["failures"]
    assert {"truncate", "forge object header", "flip data", "flip index", "flip header"} <= set(result["by_mutation"])
