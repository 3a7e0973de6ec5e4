"""`nb360 table build`: tiny builds on a generated Darcy Flow set (SYNTHETIC PDE data), resume, sharing, Ray."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nb360.build import BuildSpec, WorkDir, build_table
from nb360.build import executors as executors_module
from nb360.errors import InputError
from nb360.space import nb201
from nb360.table import Table


@pytest.fixture(scope="module")
def darcy_root(tmp_path_factory):
    from nb360.data.darcy_generator import generate_darcyflow

    root = tmp_path_factory.mktemp("darcy")
    generate_darcyflow(root, n_train=40, n_test=10, resolution=8, seed=0, workers=1, progress=False)
    return root


def tiny_spec(root, archs="0-3", **kw) -> BuildSpec:
    settings = {"epochs": 2, "channels": 2, "cells": 1, "batch_size": 8, "lr": 0.05, "latency_repeats": 2, **kw}
    return BuildSpec(task="darcyflow", data_root=str(root), archs=archs, **settings)


def test_tiny_build_records_everything(darcy_root, tmp_path) -> None:
    out = build_table(tiny_spec(darcy_root), tmp_path / "t.h5", shard_size=3, progress=False)
    t = Table.open(out)
    (run,) = t.runs
    assert (run.task, run.hp, run.seed, run.time_kind) == ("darcyflow", "2", 777, "measured")
    assert list(t.archs()) == [0, 1, 2, 3]
    for metric in ("train-loss", "train-accuracy", "train-time", "x-valid-rel_l2", "ori-test-rel_l2",
                   "ori-test-time"):
        assert metric in run.metrics
    values = t.query_batch([0, 1, 2, 3], "x-valid-rel_l2", [[0], [1]], hp="2")
    assert values.shape == (2, 4) and np.isfinite(values).all() and (values > 0).all()
    assert (t.query_batch(range(4), "train-time", 1, hp="2") > 0).all()
    assert t.scalar(0, "latency", hp="2") > 0 and t.scalar(0, "params", hp="2") > 0
    protocol = run.protocol
    assert protocol["lr"] == 0.05 and protocol["network"] == {"channel": 2, "num_cells": 1}
    assert protocol["data"]["files"]["darcyflow_generated_train.mat"]["sha256"]
    assert protocol["environment"]["torch"]
    # x-valid is the search signal; accuracy = 1 - relative L2 as NAS-Bench-360 records it
    acc = t.query(2, "x-valid-accuracy", hp="2")
    assert acc == pytest.approx(1 - t.query(2, "x-valid-rel_l2", hp="2"), abs=1e-6)


def test_interrupted_build_resumes_without_losing_shards(darcy_root, tmp_path, monkeypatch) -> None:
    spec = tiny_spec(darcy_root, archs="0-4")
    reference = Table.open(build_table(spec, tmp_path / "ref.h5", shard_size=2, progress=False))

    calls: list[tuple[int, ...]] = []
    real = executors_module.run_local

    def crash_after_first(spec_dict, shards, workers):
        for shard, records in real(spec_dict, shards, workers):
            calls.append(shard.archs)
            yield shard, records
            raise KeyboardInterrupt  # the build is killed after its first shard

    monkeypatch.setitem(executors_module.EXECUTORS, "local", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        build_table(spec, tmp_path / "resumed.h5", shard_size=2, progress=False)
    order = spec.shard_order()  # stacked builds order shards by operations, so stacks share edges
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert calls == [tuple(order[:2])]
    seen = []

    def counting(spec_dict, shards, workers):
        seen.extend(s.archs for s in shards)
        yield from real(spec_dict, shards, workers)

    monkeypatch.setitem(executors_module.EXECUTORS, "local", counting)
    resumed = Table.open(build_table(spec, tmp_path / "resumed.h5", shard_size=2, progress=False))
    assert seen == [tuple(order[2:4]), tuple(order[4:])]  # only the unfinished shards ran again
    for metric in ("train-loss", "x-valid-rel_l2", "ori-test-rel_l2"):  # training is deterministic per seed
        np.testing.assert_array_equal(resumed.query_batch(range(5), metric, [[0], [1]], hp="2"),
                                      reference.query_batch(range(5), metric, [[0], [1]], hp="2"))


def test_work_dir_refuses_other_settings(darcy_root, tmp_path) -> None:
    work = WorkDir(tmp_path / "w", tiny_spec(darcy_root), 2)
    work.write(work.plan()[0], [])  # a finished shard: the directory now holds work to protect
    with pytest.raises(InputError, match="other settings .*lr"):
        WorkDir(tmp_path / "w", tiny_spec(darcy_root, lr=0.1), 2)


def test_unique_archs_share_rows_with_their_class(darcy_root, tmp_path, monkeypatch) -> None:
    canon = nb201.canonical_array()
    sizes = np.bincount(canon, minlength=nb201.NUM_ARCHS)
    first = [int(r) for r in nb201.unique_indices() if sizes[r] > 1][:3]  # classes with several members
    monkeypatch.setattr(BuildSpec, "arch_list", lambda self: list(first))
    spec = tiny_spec(darcy_root, archs="unique")
    t = Table.open(build_table(spec, tmp_path / "u.h5", progress=False))
    members = [a for a in range(nb201.NUM_ARCHS) if nb201.canonical(a) == first[1]]
    assert len(members) > 1
    values = {t.query(a, "x-valid-rel_l2", hp="2") for a in members}
    assert len(values) == 1
    info = t.info()["runs"][0]
    assert info["rows"] == 3 and info["row_sharing"] == "isomorphism"
    assert info["archs_recorded"] == sum(nb201.canonical(a) in first for a in range(nb201.NUM_ARCHS))


def test_arch_selection_errors(darcy_root) -> None:
    with pytest.raises(InputError, match="--archs"):
        tiny_spec(darcy_root, archs="x-y").arch_list()
    with pytest.raises(InputError, match="outside"):
        tiny_spec(darcy_root, archs="15620-15630").arch_list()
    assert tiny_spec(darcy_root, archs="3:6").arch_list() == [3, 4, 5]
    assert tiny_spec(darcy_root, archs="9,2,2").arch_list() == [2, 9]


def test_cli_build_and_missing_data(darcy_root, tmp_path) -> None:
    out = tmp_path / "cli.h5"
    proc = subprocess.run([sys.executable, "-m", "nb360", "table", "build", "--task", "darcyflow", "--data-root",
                           str(darcy_root), "--epochs", "1", "--archs", "5,6", "-C", "2", "-N", "1", "--batch-size",
                           "8", "-o", str(out), "--no-progress"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    q = json.loads(subprocess.run([sys.executable, "-m", "nb360", "table", "query", str(out), "6", "--hp", "1",
                                   "--json"], capture_output=True, text=True).stdout)
    assert q["values"]["ori-test-rel_l2"] > 0
    proc = subprocess.run([sys.executable, "-m", "nb360", "table", "build", "--task", "darcyflow", "--data-root",
                           str(tmp_path / "empty"), "--epochs", "1", "-o", str(tmp_path / "x.h5")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "nb360 data" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_ray_executor_matches_local(darcy_root, tmp_path) -> None:
    pytest.importorskip("ray")
    spec = tiny_spec(darcy_root, archs="0-1")
    local = Table.open(build_table(spec, tmp_path / "local.h5", shard_size=1, progress=False))
    ray_table = Table.open(build_table(spec, tmp_path / "ray.h5", executor="ray", workers=2, shard_size=1,
                                       progress=False))
    np.testing.assert_array_equal(local.query_batch([0, 1], "x-valid-rel_l2", [[0], [1]], hp="2"),
                                  ray_table.query_batch([0, 1], "x-valid-rel_l2", [[0], [1]], hp="2"))


def test_arrays_name_the_trained_arch_of_each_shared_row(darcy_root, tmp_path, monkeypatch) -> None:
    canon = nb201.canonical_array()
    sizes = np.bincount(canon, minlength=nb201.NUM_ARCHS)
    reps = [int(r) for r in nb201.unique_indices() if sizes[r] > 1][:2]
    monkeypatch.setattr(BuildSpec, "arch_list", lambda self: list(reps))
    t = Table.open(build_table(tiny_spec(darcy_root, archs="unique"), tmp_path / "s.h5", progress=False))
    ids, curves, present = t.arrays(hp="2")
    assert list(ids) == reps and curves.shape[0] == 2
    m = t.metrics("2").index("x-valid-rel_l2")
    assert curves[1, m, 1] == np.float32(t.query(reps[1], "x-valid-rel_l2", 1, hp="2"))


def test_classification_build_records_clean_and_adversarial_accuracy(tmp_path) -> None:
    from task_fixtures import build_ninapro

    root = tmp_path / "ninapro"
    root.mkdir()
    build_ninapro(root, sizes=(16, 6, 8))
    spec = BuildSpec(task="ninapro", data_root=str(root), epochs=1, archs="0-1", channels=2, cells=1,
                     batch_size=8, latency_repeats=2, robust={"fgsm_eps": 0.1, "pgd_eps": 0.1, "pgd_steps": 2})
    t = Table.open(build_table(spec, tmp_path / "n.h5", progress=False))
    for quantity in ("accuracy_clean", "accuracy_fgsm", "accuracy_pgd"):
        value = t.query(1, f"ori-test-{quantity}", hp="1")
        assert 0.0 <= value <= 100.0
    assert t.query(1, "ori-test-accuracy_clean", hp="1") == pytest.approx(t.query(1, "ori-test-accuracy", hp="1"))
    assert t.query(0, "ori-test-accuracy_pgd", hp="1") <= t.query(0, "ori-test-accuracy_clean", hp="1")


def test_diverged_runs_are_recorded_as_nan_and_the_build_goes_on(darcy_root, tmp_path) -> None:
    out = build_table(tiny_spec(darcy_root, archs="0-2", lr=1e6), tmp_path / "d.h5", shard_size=2, progress=False)
    t = Table.open(out)
    assert list(t.archs()) == [0, 1, 2]  # every arch finished: divergence is a result, not a failure
    assert t.info()["provenance"]["runs_diverged"] >= 1
    diverged = [a for a in range(3) if np.isnan(t.query(a, "train-loss", -1, hp="2"))]
    assert diverged
    values, mask = t.curve(diverged[0], "train-loss", hp="2", with_mask=True)
    assert mask.all() and np.isnan(values[-1])  # recorded NaN: mask 1 (docs/table-format.md)
    assert t.scalar(diverged[0], "params", hp="2") > 0  # arch facts are still measured
    # a rerun of the same command finds the build complete instead of failing again
    assert Table.open(build_table(tiny_spec(darcy_root, archs="0-2", lr=1e6), tmp_path / "d.h5", shard_size=2,
                                  progress=False)).archs().tolist() == [0, 1, 2]


def test_a_build_that_finished_no_shard_does_not_block_the_corrected_command(darcy_root, tmp_path) -> None:
    WorkDir(tmp_path / "w", tiny_spec(darcy_root, lr=123.0), shard_size=2)  # e.g. refused, then fixed
    work = WorkDir(tmp_path / "w", tiny_spec(darcy_root), shard_size=2)
    assert json.loads((tmp_path / "w" / "spec.json").read_text())["spec"]["lr"] == 0.05
    work.write(work.plan()[0], [])  # once a shard is finished, other settings are refused as before
    with pytest.raises(InputError, match="other settings"):
        WorkDir(tmp_path / "w", tiny_spec(darcy_root, lr=123.0), shard_size=2)


def test_unreachable_ray_address_is_refused_quickly(tmp_path, capsys) -> None:
    import socket
    import time

    from nb360.ray_cluster import check_ray_address
    from nb360.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    assert main(["table", "build", "--task", "darcyflow", "--data-root", str(tmp_path), "--hp", "1", "-o",
                 str(tmp_path / "t.h5"), "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"]) == 2
    assert "cannot reach the Ray cluster" in capsys.readouterr().err and time.monotonic() - start < 30
    with pytest.raises(InputError, match="within 1 s"):
        check_ray_address("ray://192.0.2.1:10001", timeout=1.0)  # TEST-NET-1: never routed, never answers
    with pytest.raises(InputError, match="only applies with --executor ray"):
        main(["--debug", "table", "build", "--task", "darcyflow", "--data-root", str(tmp_path), "--hp", "1", "-o",
              str(tmp_path / "t.h5"), "--ray-address", f"127.0.0.1:{port}"])


def test_builds_of_two_fidelities_merge_into_one_table(darcy_root, tmp_path) -> None:
    low = tiny_spec(darcy_root, archs="unique-sample:3:1", epochs=1)
    build_table(low, tmp_path / "hp1.h5", work_dir=tmp_path / "hp1.work", progress=False)
    with pytest.raises(InputError, match="not finished"):
        WorkDir(tmp_path / "empty.work", tiny_spec(darcy_root, epochs=3), 2)
        build_table(tiny_spec(darcy_root, archs="unique-sample:3:1"), tmp_path / "x.h5", progress=False,
                    merge_with=[tmp_path / "empty.work"])
    with pytest.raises(InputError, match="twice"):
        build_table(low, tmp_path / "again.h5", work_dir=tmp_path / "hp1.work", progress=False,
                    merge_with=[tmp_path / "hp1.work"])
    t = Table.open(build_table(tiny_spec(darcy_root, archs="unique-sample:3:1"), tmp_path / "both.h5",
                               progress=False, merge_with=[tmp_path / "hp1.work"]))
    assert sorted((r.hp, r.epochs) for r in t.runs) == [("1", 1), ("2", 2)]
    trained = tiny_spec(darcy_root, archs="unique-sample:3:1").arch_list()
    assert len(trained) == 3 and all(a in nb201.unique_indices() for a in trained)
    for hp in ("1", "2"):
        assert np.isfinite(t.query_batch(trained, "ori-test-rel_l2", -1, hp=hp)).all()
    with pytest.raises(InputError, match="unique-sample"):
        tiny_spec(darcy_root, archs="unique-sample:x").arch_list()
