"""nb360.Table on imported tables: values equal the released records; queries, errors, views, verify."""

from __future__ import annotations

import threading

import h5py
import numpy as np
import pytest

from nats_records import FIXTURE_ARCHS, load_fixture
from nb360.errors import DataError, InputError, MissingValueError
from nb360.table import Table


def source_records():
    """Every (arch, hp, dataset, seed, ResultsCount state) in the real fixture files."""
    for arch in FIXTURE_ARCHS:
        for hp, state in load_fixture(f"{arch:06d}.pickle.pbz2").items():
            for (dataset, seed), rc in state["all_results"].items():
                yield arch, hp, dataset, seed, rc


def test_every_recorded_value_is_imported(fixture_table) -> None:
    t = Table.open(fixture_table)
    checked = 0
    for arch, hp, dataset, seed, rc in source_records():
        q = lambda metric, e: t.query(arch, metric, e, seed=seed, hp=hp, task=dataset)  # noqa: E731
        for e, v in rc["train_losses"].items():
            assert q("train-loss", e) == pytest.approx(v, rel=1e-6)
            assert q("train-accuracy", e) == pytest.approx(rc["train_acc1es"][e], rel=1e-6)
            assert q("train-time", e) == pytest.approx(rc["train_times"][e], rel=1e-6)
            checked += 3
        for key, v in rc["eval_acc1es"].items():
            split, e = key.rsplit("@", 1)
            assert q(f"{split}-accuracy", int(e)) == pytest.approx(v, rel=1e-6)
            assert q(f"{split}-loss", int(e)) == pytest.approx(rc["eval_losses"][key], rel=1e-6)
            checked += 2
        for key, v in rc["eval_times"].items():
            split, e = key.rsplit("@", 1)
            assert q(f"{split}-time", int(e)) == pytest.approx(v, rel=1e-6)
        assert t.scalar(arch, "params", seed=seed, hp=hp, task=dataset) == pytest.approx(float(rc["params"]))
        assert t.scalar(arch, "flops", seed=seed, hp=hp, task=dataset) == pytest.approx(rc["flop"])
        assert t.scalar(arch, "latency", seed=seed, hp=hp, task=dataset) == pytest.approx(float(rc["latency"][0]))
    assert checked > 10_000


def test_sparse_epochs_are_missing_not_nan(fixture_table) -> None:
    t = Table.open(fixture_table)
    # cifar10-valid hp 200 records ori-test only at epoch 199 (the released files do this)
    assert t.query(0, "ori-test-accuracy", 199, seed=777, hp="200", task="cifar10-valid") > 0
    with pytest.raises(MissingValueError, match="not recorded"):
        t.query(0, "ori-test-accuracy", 100, seed=777, hp="200", task="cifar10-valid")
    values, present = t.curve(0, "ori-test-accuracy", seed=777, hp="200", task="cifar10-valid", with_mask=True)
    assert present.sum() == 1 and present[199] and np.isnan(values[:199]).all()
    with pytest.raises(MissingValueError):
        t.query(5, "train-loss", hp="200", task="cifar10")  # arch 5 is not in the fixture


def test_seed_none_averages_recorded_seeds(fixture_table) -> None:
    t = Table.open(fixture_table)
    per_seed = [t.query(11, "x-valid-accuracy", seed=s, hp="200", task="cifar10-valid") for s in (777, 888, 999)]
    assert t.query(11, "x-valid-accuracy", hp="200", task="cifar10-valid") == pytest.approx(np.mean(per_seed))


def test_arch_given_three_ways(fixture_table) -> None:
    t = Table.open(fixture_table)
    s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    ops = ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "none", "nor_conv_3x3", "avg_pool_3x3")
    values = {t.query(a, "ori-test-accuracy", hp="200", task="cifar100", seed=777) for a in (11, s, ops)}
    assert len(values) == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"metric": "valid-accuracy"}, "metric 'valid-accuracy' is not recorded"),
    ({"epoch": 200}, "epoch 200 is out of range"),
    ({"epoch": -201}, "out of range"),
    ({"hp": "90"}, "hp '90' is not recorded"),
    ({"seed": 1}, "seed 1 is not recorded"),
    ({"task": "imagenet"}, "task 'imagenet' is not in this table"),
    ({"arch": 15625}, "out of range"),
])
def test_bad_queries_name_the_problem(fixture_table, kwargs, message) -> None:
    t = Table.open(fixture_table)
    args = {"arch": 0, "metric": "x-valid-accuracy", "epoch": -1, "hp": "200", "task": "cifar10-valid", **kwargs}
    with pytest.raises(InputError, match=message):
        t.query(args.pop("arch"), args.pop("metric"), **args)


def test_negative_epochs_count_from_the_end(fixture_table) -> None:
    t = Table.open(fixture_table)
    kw = {"seed": 777, "hp": "200", "task": "cifar100"}
    for e in (-1, -2, -7, -200):
        assert t.query(11, "train-loss", e, **kw) == t.query(11, "train-loss", 200 + e, **kw)
    np.testing.assert_array_equal(t.query_batch([0, 11], "train-loss", [[-3], [-200]], **kw),
                                  t.query_batch([0, 11], "train-loss", [[197], [0]], **kw))
    for e in (-201, -10**6):
        with pytest.raises(InputError, match="out of range"):
            t.query(11, "train-loss", e, **kw)
        with pytest.raises(InputError, match="out of range"):
            t.query_batch([11], "train-loss", e, **kw)


def test_hp_defaults_to_the_highest_recorded(fixture_table) -> None:
    t = Table.open(fixture_table)
    assert t.highest_hp("cifar10") == "200"
    assert t.metrics(task="cifar10") == t.metrics("200", "cifar10")
    assert t.seeds(task="cifar10") == t.seeds("200", "cifar10") != []
    assert t.query(11, "train-loss", task="cifar10", seed=777) == t.query(11, "train-loss", hp="200", task="cifar10",
                                                                           seed=777)
    from nb360.table.embedded import embedded_table_path

    embedded = Table.open(embedded_table_path())  # two short fidelities, no '200': the old default '200' raised or said []
    low, high = sorted(embedded.hps(), key=int)
    assert "200" not in (low, high) and embedded.highest_hp() == high
    assert embedded.seeds() == embedded.seeds(high) != []
    assert embedded.metrics() == embedded.metrics(high) and embedded.arrays(seed=777)[1].shape[2] == int(high)


def test_several_tasks_need_task(fixture_table) -> None:
    with pytest.raises(InputError, match="several tasks"):
        Table.open(fixture_table).query(0, "train-loss")


def test_query_batch_equals_single_queries(fixture_table) -> None:
    t = Table.open(fixture_table)
    archs = np.array([0, 11, 284, 11])
    epochs = np.array([[0], [5], [199]])
    got = t.query_batch(archs, "train-loss", epochs, seed=888, hp="200", task="cifar100")
    assert got.shape == (3, 4) and got.dtype == np.float32
    for i, e in enumerate(epochs[:, 0]):
        for j, a in enumerate(archs):
            assert got[i, j] == np.float32(t.query(int(a), "train-loss", int(e), seed=888, hp="200", task="cifar100"))
    two = t.query_batch([0, 11], ["train-loss", "train-accuracy"], hp="12", task="cifar10", seed=111)
    assert two[1] == pytest.approx(t.query(11, "train-accuracy", hp="12", task="cifar10", seed=111))
    with pytest.raises(MissingValueError, match="not recorded"):
        t.query_batch([0, 5], "train-loss", hp="200", task="cifar10")
    assert np.isnan(t.query_batch([0, 5], "train-loss", hp="200", task="cifar10", missing="nan")[1])


def test_best_matches_brute_force(nb360_layout_table) -> None:
    _, path = nb360_layout_table
    t = Table.open(path)
    values = {a: t.query(a, "ori-test-accuracy") for a in range(40)}
    best = max(values, key=values.get)
    assert t.best("ori-test-accuracy") == (best, pytest.approx(values[best]))
    limit = sorted(t.scalar(a, "params") for a in range(40))[10]
    allowed = [a for a in range(40) if t.scalar(a, "params") <= limit]
    best_small = max(allowed, key=values.get)
    assert t.best("ori-test-accuracy", max_params=limit)[0] == best_small
    assert t.best("ori-test-loss")[1] == pytest.approx(min(t.query(a, "ori-test-loss") for a in range(40)))


def test_simulated_time_account(nb360_layout_table) -> None:
    _, path = nb360_layout_table
    t = Table.open(path)
    value, cost, used = t.simulate_train_eval(3, hp="200", epoch=9)
    train = sum(t.query(3, "train-time", e) for e in range(10))
    assert cost == pytest.approx(train + t.query(3, "ori-test-time", 9), rel=1e-5)
    assert value == t.query(3, "ori-test-accuracy", 9) and used == pytest.approx(cost)
    _, cost2, used2 = t.simulate_train_eval(4, hp="200")
    assert used2 == pytest.approx(cost + cost2)
    t.reset_time()
    assert t.used_time == 0.0


def test_arrays_are_zero_copy_and_read_only(nb360_layout_table) -> None:
    _, path = nb360_layout_table
    t = Table.open(path)
    arch_ids, curves, present = t.arrays()
    assert list(arch_ids) == list(range(40)) and curves.shape == (40, len(t.metrics()), 20)
    m = t.metrics().index("ori-test-accuracy")
    assert curves[7, m, 4] == np.float32(t.query(7, "ori-test-accuracy", 4)) and present.all()
    with pytest.raises(ValueError):
        curves[0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        curves.setflags(write=True)


def test_file_is_plain_hdf5(fixture_table) -> None:
    from nb360 import _table

    t = Table.open(fixture_table)
    with h5py.File(fixture_table, "r") as f:
        assert f.attrs["nb360_schema_version"] == 1 and f.attrs["space"] == "nb201"
        assert f.attrs["provenance_source_sha256"]
        assert f["archs"].shape == (15625,)
        for run in t.runs:
            group = f[run.group]
            assert group.attrs["task"] == run.task and group.attrs["epochs"] == run.epochs
            for name, address in run.datasets.items():
                ds = group[name]
                assert ds.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS and ds.compression is None
                info = t._file.dataset_info(address)  # what the C++ core read from the HDF5 metadata
                assert info["shape"] == ds.shape and info["offset"] == ds.id.get_offset()
        np.testing.assert_array_equal(f[t.runs[0].group]["curves"][...], t.arrays(
            hp=t.runs[0].hp, task=t.runs[0].task, seed=t.runs[0].seed)[1])
    assert _table.SCHEMA_VERSION == 1


def test_concurrent_queries_agree(fixture_table) -> None:
    t = Table.open(fixture_table)
    expected = [t.query(a, "train-loss", e, seed=777, hp="200", task="cifar100") for a in FIXTURE_ARCHS
                for e in range(0, 200, 7)]
    results: list[list[float]] = []

    def worker() -> None:
        results.append([t.query(a, "train-loss", e, seed=777, hp="200", task="cifar100") for a in FIXTURE_ARCHS
                        for e in range(0, 200, 7)])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert all(r == expected for r in results) and len(results) == 8


def test_verify_detects_a_corrupted_value(nb360_layout_table, tmp_path) -> None:
    _, path = nb360_layout_table
    Table.open(path).verify()
    t = Table.open(path)
    offset = t._file.dataset_info(t.runs[0].datasets["curves"])["offset"]
    broken = tmp_path / "broken.h5"
    data = bytearray(path.read_bytes())
    data[offset + 100] ^= 0x40
    broken.write_bytes(bytes(data))
    with pytest.raises(DataError, match="curves is corrupt"):
        Table.open(broken).verify()


def test_iteration_and_len(fixture_table) -> None:
    t = Table.open(fixture_table)
    assert len(t) == 15625 and list(t) == [0, 11, 284]
    assert list(t.archs(task="cifar10", hp="12")) == [0, 11, 284]


def test_documented_h5py_recipe_reads_the_table(nb360_layout_table) -> None:
    import re
    from pathlib import Path

    _, path = nb360_layout_table
    doc = (Path(__file__).resolve().parents[1] / "docs" / "table-format.md").read_text()
    code = re.search(r"## Reading a table without nb360\n\n```python\n(.*?)```", doc, re.DOTALL).group(1)
    namespace: dict = {}
    exec(code.replace('"table.h5"', repr(str(path))).replace("199", "19"), namespace)  # 20-epoch table
    assert namespace["acc"] == np.float32(Table.open(path).query(11, "ori-test-accuracy", 19))


def test_release_pages_keeps_views_valid(nb360_layout_table) -> None:
    _, path = nb360_layout_table
    t = Table.open(path)
    _, curves, _ = t.arrays()
    before = float(curves.sum())
    t.release_pages()
    assert float(curves.sum()) == before and t.query(3, "train-loss", 2) == curves[3, 0, 2]
