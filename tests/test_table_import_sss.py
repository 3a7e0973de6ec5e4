"""Importing NATS-Bench's size-space tables (NATS-sss-*): both layouts, every recorded value, the CLI."""

from __future__ import annotations

import bz2
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nats_records import FIXTURE_ARCHS, FIXTURE_DIR, SSS_FIXTURE_DIR, fixture_single_file, load_fixture
from nb360.errors import DataError
from nb360.table import Table
from nb360.table.importer import import_nats


@pytest.fixture(scope="module")
def sss_table(tmp_path_factory) -> Path:
    return import_nats(SSS_FIXTURE_DIR, tmp_path_factory.mktemp("sss") / "sss.h5")


def assert_table_holds_records(table: Table, directory: Path) -> int:
    """Every value of every fixture record is in the table (float32), and nothing else is."""
    checked = 0
    for index in FIXTURE_ARCHS:
        for hp, state in load_fixture(f"{index:06d}.pickle.pbz2", directory).items():
            for (dataset, seed), rc in state["all_results"].items():
                run = next(r for r in table.runs if (r.task, r.hp, r.seed) == (dataset, hp, seed))
                assert run.eval_names == tuple(rc["eval_names"])
                series = {"train-loss": rc["train_losses"], "train-accuracy": rc["train_acc1es"],
                          "train-time": rc["train_times"]}
                if rc["train_acc5es"] is not None:
                    series["train-accuracy5"] = rc["train_acc5es"]
                for name in rc["eval_names"]:
                    for source, q in (("eval_losses", "loss"), ("eval_acc1es", "accuracy"), ("eval_times", "time")):
                        series[f"{name}-{q}"] = {int(k.split("@")[1]): v for k, v in rc[source].items()
                                                 if k.split("@")[0] == name}
                assert set(series) == set(run.metrics)
                for metric, values in series.items():
                    curve, present = table.curve(index, metric, seed=seed, hp=hp, task=dataset, with_mask=True)
                    assert set(np.flatnonzero(present)) == set(values), (index, hp, dataset, metric)
                    expected = np.array([values[e] for e in sorted(values)], dtype=np.float32)
                    np.testing.assert_array_equal(curve[present], expected)
                    checked += len(values)
                for name, value in (("params", rc["params"]), ("flops", rc["flop"]), ("latency", rc["latency"][0])):
                    assert table.scalar(index, name, seed=seed, hp=hp, task=dataset) == float(value)
    return checked


def test_size_space_directory_imports_every_value(sss_table) -> None:
    t = Table.open(sss_table)
    assert (t.space, t.num_archs) == ("sss", 32768)
    assert t.tasks == ["ImageNet16-120", "cifar10", "cifar10-valid", "cifar100"]
    assert t.source_layout == {"format": "nats-sss", "datasets": ["cifar10-valid", "cifar10", "cifar100",
                                                                 "ImageNet16-120"], "hps": ["01", "12", "90"]}
    assert t.hps("cifar100") == ["01", "12", "90"] and t.seeds("12", "cifar100") == [777, 888, 999]
    assert t.epochs("01", "cifar10") == 1 and t.epochs("90", "cifar10") == 90
    assert list(t.archs()) == list(FIXTURE_ARCHS)
    assert t.runs[0].protocol["network"] == {"name": "infer.shape.tiny", "class_num": 120,
                                             "genotype": load_fixture("000011.pickle.pbz2", SSS_FIXTURE_DIR)["90"][
                                                 "all_results"][("cifar10", 777)]["arch_config"]["genotype"]}
    assert t.info()["provenance"]["source_format"] == "nats-sss -simple directory"
    assert assert_table_holds_records(t, SSS_FIXTURE_DIR) > 10000
    assert t.query("8:8:8:16:32", "x-valid-accuracy", 0, hp="01", task="cifar10-valid") == \
        t.query(11, "x-valid-accuracy", 0, hp="01", task="cifar10-valid")


def test_topology_directory_imports_every_value(fixture_table) -> None:
    assert assert_table_holds_records(Table.open(fixture_table), FIXTURE_DIR) > 10000


def test_size_space_single_file_equals_directory(sss_table, tmp_path) -> None:
    single = Table.open(import_nats(fixture_single_file(tmp_path / "NATS-sss.pickle.pbz2", SSS_FIXTURE_DIR),
                                   tmp_path / "single.h5"))
    a = Table.open(sss_table)
    assert [(r.task, r.hp, r.seed, r.metrics, r.eval_names) for r in a.runs] == \
        [(r.task, r.hp, r.seed, r.metrics, r.eval_names) for r in single.runs]
    for run in a.runs:
        for x, y in zip(a.arrays(run.hp, run.task, run.seed), single.arrays(run.hp, run.task, run.seed)):
            np.testing.assert_array_equal(x, y)
    assert single.info()["provenance"]["source_format"] == "nats-sss single file"


def test_size_space_meta_out_of_order_is_refused(tmp_path) -> None:
    meta = load_fixture("meta.pickle.pbz2", SSS_FIXTURE_DIR)
    meta["meta_archs"][1], meta["meta_archs"][2] = meta["meta_archs"][2], meta["meta_archs"][1]
    d = tmp_path / "NATS-sss-bad-simple"
    d.mkdir()
    (d / "meta.pickle.pbz2").write_bytes(bz2.compress(pickle.dumps(meta)))
    with pytest.raises(DataError, match="arch 1 is 8:8:8:8:24.*order of the NATS-Bench size space"):
        import_nats(d, tmp_path / "out.h5")


def test_cli_import_defaults_to_the_table_home(tmp_path) -> None:
    env = {**os.environ, "NB360_TABLES": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "nb360", "table", "import", str(SSS_FIXTURE_DIR)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    table = tmp_path / "home" / "NATS-sss-v1_0-50262.h5"
    assert table.is_file() and str(table) in done.stdout
    done = subprocess.run([sys.executable, "-m", "nb360", "table", "query", str(table), "8:8:8:16:32", "--task",
                           "cifar100", "--hp", "90"], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("arch 11 8:8:8:16:32"), done.stderr
