"""Importing released NATS-Bench / NAS-Bench-360 topology tables: both layouts, restricted unpickling."""

from __future__ import annotations

import bz2
import os
import pickle
import shutil

import numpy as np
import pytest

from nats_records import FIXTURE_DIR, fixture_single_file, synthetic_arch_results, write_single_file
from nb360.errors import DataError, InputError
from nb360.table import Table
from nb360.table.importer import import_nats, load_pickle


def test_single_file_and_directory_layouts_agree(fixture_table, tmp_path) -> None:
    single = import_nats(fixture_single_file(tmp_path / "NATS-tss-fixture.pickle.pbz2"), tmp_path / "single.h5")
    a, b = Table.open(fixture_table), Table.open(single)
    assert [(r.task, r.hp, r.seed, r.metrics, r.epochs) for r in a.runs] == \
           [(r.task, r.hp, r.seed, r.metrics, r.epochs) for r in b.runs]
    for run in a.runs:
        ids_a, curves_a, present_a = a.arrays(hp=run.hp, task=run.task, seed=run.seed)
        ids_b, curves_b, present_b = b.arrays(hp=run.hp, task=run.task, seed=run.seed)
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_array_equal(present_a, present_b)
        np.testing.assert_array_equal(curves_a[present_a], curves_b[present_b])
    assert b.info()["provenance"]["source_format"] == "nats-tss single file"


def test_nb360_layout_keeps_every_field(nb360_layout_table) -> None:
    source, path = nb360_layout_table
    t = Table.open(path)
    (run,) = t.runs
    assert (run.task, run.hp, run.seed, run.epochs) == ("ninapro", "200", 777, 20)
    assert run.metrics == ("train-loss", "train-accuracy", "train-time", "ori-test-loss", "ori-test-accuracy",
                           "ori-test-time")
    assert run.valid_split == "ori-test" and run.time_kind == "pseudo"
    assert run.scalars == ("params", "flops")  # NAS-Bench-360 records no latency
    assert run.protocol["batch_size"] == 256 and run.protocol["network"] == {"channel": 16, "num_cells": 5,
                                                                             "class_num": 18}
    info = t.info()
    assert info["provenance"]["source_file"] == source.name
    assert len(info["provenance"]["source_sha256"]) == 64


def test_uncompressed_pickle_is_read(tmp_path) -> None:
    archs = {0: synthetic_arch_results(0, __import__("nb360").space.nb201.arch_str(0), np.random.default_rng(1),
                                       epochs=3)}
    src = write_single_file(tmp_path / "plain.pickle", archs, compress=False)
    t = Table.open(import_nats(src, tmp_path / "out.h5"))
    assert list(t.archs()) == [0]


def test_task_filter(tmp_path) -> None:
    t = Table.open(import_nats(FIXTURE_DIR, tmp_path / "c100.h5", tasks=["cifar100"]))
    assert t.tasks == ["cifar100"]
    with pytest.raises(InputError, match="holds no records for tasks"):
        import_nats(FIXTURE_DIR, tmp_path / "none.h5", tasks=["nosuch"])


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running_code(tmp_path) -> None:
    marker = tmp_path / "pwned"
    payload = {"meta_archs": [], "arch2infos": {0: _Exploit(str(marker))}}
    src = tmp_path / "evil.pickle.pbz2"
    src.write_bytes(bz2.compress(pickle.dumps(payload)))
    with pytest.raises(DataError, match=r"refusing to unpickle (posix|os)\.system"):
        import_nats(src, tmp_path / "out.h5")
    assert not marker.exists()
    assert not (tmp_path / "out.h5").exists()


def test_other_globals_are_refused(tmp_path) -> None:
    src = tmp_path / "x.pickle"
    src.write_bytes(pickle.dumps({"a": np.random.default_rng(0)}))
    with pytest.raises(DataError, match="refusing to unpickle"):
        load_pickle(src)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes(b"BZh9" + b"\x00" * 50), "not a readable NATS-Bench pickle"),
    (lambda p: p.write_bytes(bz2.compress(pickle.dumps({"x": 1}))), "no 'meta_archs'"),
    (lambda p: p.write_bytes(bz2.compress(pickle.dumps({"meta_archs": ["a"]}))), "lists 1 archs"),
])
def test_foreign_or_corrupt_sources(tmp_path, make, message) -> None:
    src = tmp_path / "bad.pickle.pbz2"
    make(src)
    with pytest.raises(DataError, match=message):
        import_nats(src, tmp_path / "out.h5")


def test_truncated_source_file(tmp_path) -> None:
    good = fixture_single_file(tmp_path / "good.pickle.pbz2")
    cut = tmp_path / "cut.pickle.pbz2"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or corrupt"):
        import_nats(cut, tmp_path / "out.h5")


def test_simple_directory_without_meta(tmp_path) -> None:
    d = tmp_path / "NATS-tss-x-simple"
    d.mkdir()
    shutil.copy(FIXTURE_DIR / "000000.pickle.pbz2", d)
    with pytest.raises(DataError, match="meta.pickle.pbz2 is missing"):
        import_nats(d, tmp_path / "out.h5")


def test_meta_file_alone_says_import_the_directory(tmp_path) -> None:
    with pytest.raises(DataError, match="import the directory instead"):
        import_nats(FIXTURE_DIR / "meta.pickle.pbz2", tmp_path / "out.h5")


def test_nan_in_source_is_dropped_and_counted(tmp_path) -> None:
    from nb360.space import nb201

    rec = synthetic_arch_results(0, nb201.arch_str(0), np.random.default_rng(2), epochs=4)
    rec["200"]["all_results"][("ninapro", 777)]["eval_times"]["ori-test@2"] = float("nan")
    t = Table.open(import_nats(write_single_file(tmp_path / "n.pickle.pbz2", {0: rec}), tmp_path / "n.h5"))
    assert t.info()["provenance"]["nan_values_dropped"] == 1
    _, present = t.curve(0, "ori-test-time", with_mask=True)
    assert list(present) == [True, True, False, True]


def _object_array_bomb() -> bytes:
    """A 201-byte pickle declaring an object array of 400 million elements (3 GB and a segfault before the fix)."""
    p = pickle.dumps(np.empty(3, dtype=object), protocol=4)
    i = p.index(b"K\x03\x85")  # the declared shape (3,)
    return p[:i] + b"J" + (400_000_000).to_bytes(4, "little") + p[i + 2:]


@pytest.mark.parametrize("payload", [
    _object_array_bomb(),
    pickle.dumps(np.zeros(4))[:-30] + b".",  # an array state cut short
])
def test_declared_sizes_are_checked_before_allocating(tmp_path, payload) -> None:
    import subprocess
    import sys

    src = tmp_path / "bomb.pickle"
    src.write_bytes(payload)
    # Peak RSS from VmHWM: ru_maxrss would include the forking pytest process's own (Linux keeps it across exec).
    code = ("from pathlib import Path\nfrom nb360.table.importer import load_pickle\n"
            "from nb360.errors import DataError\n"
            f"try:\n    load_pickle(Path({str(src)!r}))\nexcept DataError as exc:\n    print('refused:', exc)\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
            "print('maxrss_kb', hwm)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused:" in proc.stdout and "truncated or corrupt" in proc.stdout
    assert int(proc.stdout.split("maxrss_kb")[1]) < 400_000  # python + numpy; never the declared gigabytes


def test_a_record_claiming_millions_of_epochs_is_refused_before_allocating(tmp_path) -> None:
    from nb360.space import nb201

    rec = synthetic_arch_results(0, nb201.arch_str(0), np.random.default_rng(2), epochs=4)
    rec["200"]["all_results"][("ninapro", 777)]["epochs"] = 5_000_000
    src = write_single_file(tmp_path / "e.pickle.pbz2", {0: rec})
    with pytest.raises(DataError, match="claims 5,000,000 epochs"):
        import_nats(src, tmp_path / "e.h5")
    assert not (tmp_path / "e.h5").exists()


def test_a_fifo_source_is_refused_without_hanging(tmp_path) -> None:
    fifo = tmp_path / "NATS-tss.pickle.pbz2"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        load_pickle(fifo)
