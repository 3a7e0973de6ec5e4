"""nb360.compat.nats against the real nats_bench package on the same released fixture records."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from nats_records import FIXTURE_ARCHS, FIXTURE_DIR
from nb360.compat import nats
from nb360.errors import InputError

nats_bench = pytest.importorskip("nats_bench")
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")


@pytest.fixture(scope="module")
def apis(fixture_table):
    ref = nats_bench.create(str(FIXTURE_DIR), "tss", fast_mode=True, verbose=False)
    return ref, nats.create(fixture_table, "tss", fast_mode=True, verbose=False)


def same(a, b) -> bool:
    if isinstance(a, str) or a is None or b is None:
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-9)


def outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (ValueError, KeyError, LookupError) as exc:
        return type(exc).__name__


def test_get_more_info_matches_nats_bench(apis) -> None:
    ref, api = apis
    compared = 0
    for idx in FIXTURE_ARCHS:
        for ds in DATASETS:
            for hp in ("12", "200"):
                seeds = ref.arch2infos_dict[idx][hp].get_dataset_seeds(ds) if idx in ref.arch2infos_dict else \
                    ref.get_more_info(idx, ds, hp=hp) and ref.arch2infos_dict[idx][hp].get_dataset_seeds(ds)
                for iepoch in (None, 0, 5, 11, 150, 250):
                    for is_random in (False, *seeds):
                        r = outcome(ref.get_more_info, idx, ds, iepoch=iepoch, hp=hp, is_random=is_random)
                        o = outcome(api.get_more_info, idx, ds, iepoch=iepoch, hp=hp, is_random=is_random)
                        if isinstance(r, str):
                            assert isinstance(o, str), (idx, ds, hp, iepoch, is_random, o)
                            continue
                        assert set(r) == set(o), (idx, ds, hp, iepoch, is_random)
                        assert all(same(r[k], o[k]) for k in r), (idx, ds, hp, iepoch, is_random, r, o)
                        compared += 1
    assert compared > 100


def test_random_seed_choice_follows_python_random(apis) -> None:
    ref, api = apis
    for ds in DATASETS:
        random.seed(3)
        r = [ref.get_more_info(11, ds, hp="200")["train-loss"] for _ in range(6)]
        random.seed(3)
        o = [api.get_more_info(11, ds, hp="200")["train-loss"] for _ in range(6)]
        assert all(same(a, b) for a, b in zip(r, o))


def test_cost_info_matches(apis) -> None:
    ref, api = apis
    for idx in FIXTURE_ARCHS:
        for ds in DATASETS:
            for hp in ("12", "200"):
                r, o = ref.get_cost_info(idx, ds, hp=hp), api.get_cost_info(idx, ds, hp=hp)
                assert set(r) == set(o) and all(same(r[k], o[k]) for k in r)


def test_simulate_train_eval_matches(apis) -> None:
    ref, api = apis
    for ds in ("cifar10", "cifar100", "ImageNet16-120"):
        for hp, iepoch in (("12", 11), ("200", None), ("12", 3)):
            random.seed(5)
            r = ref.simulate_train_eval(284, ds, iepoch=iepoch, hp=hp)
            random.seed(5)
            o = api.simulate_train_eval(284, ds, iepoch=iepoch, hp=hp)
            assert all(same(a, b) for a, b in zip(r[:3], o[:3])), (ds, hp, iepoch, r, o)
    api.reset_time()
    assert api.used_time == 0


def test_space_calls_match(apis) -> None:
    ref, api = apis
    assert len(ref) == len(api) == 15625
    for i in (0, 1, 11, 284, 15624):
        assert ref.arch(i) == api.arch(i)
        assert ref.query_index_by_arch(ref.arch(i)) == api.query_index_by_arch(api.arch(i)) == i
        assert (ref.str2matrix(ref.arch(i)) == api.str2matrix(api.arch(i))).all()
        assert ref.str2lists(ref.arch(i)) == api.str2lists(api.arch(i))
    assert api.query_index_by_arch("|not~0|+|an~0|arch~1|") == ref.query_index_by_arch("|not~0|+|an~0|arch~1|") == -1
    with pytest.raises(ValueError):
        api.query_index_by_arch(15625)
    assert api.get_net_config(11, "cifar100") == ref.get_net_config(11, "cifar100")


def test_hp_has_no_silent_default(apis) -> None:
    _, api = apis
    with pytest.raises(InputError, match="pass hp= explicitly"):
        api.get_more_info(0, "cifar10")


def test_nb360_tasks_work_where_stock_nats_refuses(nb360_layout_table) -> None:
    _, path = nb360_layout_table
    api = nats.create(path, "tss", fast_mode=True, verbose=False)
    info = api.get_more_info(7, "ninapro", hp="200", is_random=False)
    assert set(info) == {"train-loss", "train-accuracy", "train-per-time", "train-all-time", "valtest-loss",
                         "valtest-accuracy", "valtest-per-time", "valtest-all-time"}
    acc, latency, cost, used = api.simulate_train_eval(7, "ninapro", iepoch=9, hp="200")
    assert acc == info["valtest-accuracy"] or acc > 0
    assert latency is None and cost > 0 and used == cost
    best, value = api.find_best("ninapro", "ori-test", hp="200")
    assert value == max(api.get_more_info(i, "ninapro", hp="200", is_random=False)["valtest-accuracy"]
                        for i in range(40))


REA_SCRIPT = '''
import random
def regularized_evolution(api, dataset, hp, cycles=30, population_size=10, sample_size=3, seed=0):
    random.seed(seed)
    population, history = [], []
    while len(population) < population_size:
        arch = random.choice(candidates)
        acc, _, _, _ = api.simulate_train_eval(arch, dataset, iepoch=None, hp=hp)
        population.append((acc, arch)); history.append((acc, arch))
    while len(history) < cycles:
        sample = random.sample(population, sample_size)
        parent = max(sample)[1]
        child = random.choice(candidates)
        acc, _, _, _ = api.simulate_train_eval(child, dataset, iepoch=None, hp=hp)
        population.append((acc, child)); history.append((acc, child)); population.pop(0)
    best = max(history)[1]
    return best, api.get_more_info(best, dataset, hp=hp, is_random=False)["test-accuracy"], api.used_time
'''


def test_an_unchanged_nats_search_script_runs_on_both(apis) -> None:
    ref, api = apis
    results = []
    for backend in (ref, api):
        backend.reset_time()
        namespace = {"candidates": [backend.arch(i) for i in FIXTURE_ARCHS]}
        exec(REA_SCRIPT, namespace)  # the same script text for both APIs
        results.append(namespace["regularized_evolution"](backend, "cifar100", "200"))
    (b1, a1, t1), (b2, a2, t2) = results
    assert b1 == b2 and same(a1, a2) and same(t1, t2)


# ---------------------------------------------------------------------------------------------- create(None, ...)
def test_create_none_opens_the_default_table(fixture_table, tmp_path, monkeypatch) -> None:
    home = tmp_path / "tables"
    home.mkdir()
    (home / "NATS-tss-v1_0-3ffb9.h5").symlink_to(fixture_table)
    monkeypatch.setenv("NB360_TABLES", str(home))
    api = nats.create(None, "tss", fast_mode=True, verbose=False)
    assert api.filename == "NATS-tss-v1_0-3ffb9.h5" and api.get_more_info(11, "cifar10", hp="12")["train-loss"] > 0
    assert nats.default_table("topology") == home / "NATS-tss-v1_0-3ffb9.h5"


def test_create_none_without_a_table_names_both_places_and_the_fix(tmp_path, monkeypatch) -> None:
    from nb360.errors import DataError

    monkeypatch.delenv("NB360_TABLES", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (tmp_path / "torch" / "NATS-sss-v1_0-50262-simple").mkdir(parents=True)
    with pytest.raises(DataError) as info:
        nats.create(None, "sss", fast_mode=True, verbose=False)
    message = str(info.value)
    assert "$NB360_TABLES is unset" in message and "~/.nb360/tables" in message
    assert f"nb360 table import {tmp_path / 'torch' / 'NATS-sss-v1_0-50262-simple'}" in message
    monkeypatch.setenv("NB360_TABLES", str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match=r"\$NB360_TABLES=.*elsewhere"):
        nats.create(None, "tss", fast_mode=True, verbose=False)


def test_create_refuses_released_files_and_dicts_with_the_fix(tmp_path) -> None:
    from nb360.errors import DataError

    with pytest.raises(DataError, match="nb360 table import"):
        nats.create(str(FIXTURE_DIR), "tss", fast_mode=True, verbose=False)
    with pytest.raises(InputError, match="nb360 table import"):
        nats.create({"meta_archs": []}, "tss")
    with pytest.raises(InputError, match="invalid search space"):
        nats.create(str(FIXTURE_DIR), "xss")


def test_a_size_table_is_not_a_topology_api(tmp_path) -> None:
    from nats_records import SSS_FIXTURE_DIR
    from nb360.table.importer import import_nats

    table = import_nats(SSS_FIXTURE_DIR, tmp_path / "sss.h5")
    with pytest.raises(InputError, match="needs a nb201 table"):
        nats.create(table, "tss")
    assert nats.create(table, "size", verbose=False).is_size


def test_nats_defaults_restores_hp_12_and_answers_as_nats_bench(fixture_table) -> None:
    ref = nats_bench.create(str(FIXTURE_DIR), "tss", fast_mode=True, verbose=False)
    api = nats.create(fixture_table, "tss", fast_mode=True, verbose=False, nats_defaults=True)
    from nats_compare import same as assert_same

    for call in (lambda x: x.get_more_info(11, "cifar100", is_random=False), lambda x: x.get_cost_info(0, "cifar10"),
                 lambda x: x.simulate_train_eval(284, "cifar10")[:3], lambda x: x.query_info_str_by_arch(11),
                 lambda x: x.query_by_index(11, "cifar10")):
        random.seed(0)
        r = call(ref)
        random.seed(0)
        assert_same(r, call(api))


def test_what_nats_benchs_own_tests_do_runs_on_nb360(fixture_table, tmp_path, capsys) -> None:
    """The calls NATS-Bench's tests/api_test.py makes (written anew), on both spaces' fixture tables."""
    from nats_records import SSS_FIXTURE_DIR
    from nb360.space import nb201
    from nb360.table.importer import import_nats

    sss_table = import_nats(SSS_FIXTURE_DIR, tmp_path / "sss.h5")
    apis = [nats.NATStopology(fixture_table, True, False, nats_defaults=True),
            nats.NATSsize(sss_table, True, False, nats_defaults=True)]
    for api in apis:
        for index in FIXTURE_ARCHS:
            for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
                assert "train-loss" in api.get_more_info(index, dataset)
                assert {"flops", "params", "latency", "T-train@epoch"} <= set(api.get_cost_info(index, dataset))
                acc, latency, cost, total = api.simulate_train_eval(index, dataset=dataset, hp="12")
                assert acc > 0 and latency > 0 and 0 < cost <= total
                assert api.get_net_config(index, dataset)["name"] in ("infer.tiny", "infer.shape.tiny")
                info_12 = api.get_cost_info(index, dataset, hp="12")
                info_full = api.get_cost_info(index, dataset, hp=api.full_epochs_in_paper)
                assert math.isclose(info_12["flops"], info_full["flops"], rel_tol=1e-4)
            api.show(index)
        best, accuracy = api.find_best("ImageNet16-120", "valid", hp="12", enforce_all=False)
        assert best in FIXTURE_ARCHS and accuracy > 0
        with pytest.raises(ValueError):
            api.get_more_info(100000, "cifar10")
    topology = apis[0]
    data = topology.query_by_index(284, dataname="cifar10", hp=200)
    assert data[777].get_train()["iepoch"] == 199 and len(data[777].train_acc1es) == 200
    assert len({nb201.unique_str(topology[i]) for i in range(len(topology))}) == 6466
    assert "epochs >>>" in capsys.readouterr().out


def test_verbose_prints_a_line_per_call_and_silent_lookups_stay_exact(fixture_table, capsys) -> None:
    api = nats.create(fixture_table, "tss", fast_mode=True, verbose=False)
    a11 = api.arch(11)  # installs the compiled lookups
    assert api.query_index_by_arch(a11) == 11 and api.arch(11) == a11 and capsys.readouterr().out == ""
    api.verbose = True
    assert api.arch(11) == a11 and api.query_index_by_arch(a11) == 11
    api.get_more_info(11, "cifar10", hp="12")
    out = capsys.readouterr().out
    assert "Call the arch function with index=11" in out and "Call query_index_by_arch" in out
    assert "Call the get_more_info function" in out
    api.verbose = False
    assert api.arch(11) == a11 and capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="invalid index"):
        api.arch(15625)
    assert api.query_index_by_arch(True) == 1 and api.query_index_by_arch(np.int64(3)) == -1  # as nats_bench
