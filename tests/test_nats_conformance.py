"""Differential conformance: nb360.compat.nats against nats_bench 1.8 (the oracle) on the real fixtures.

The members compared are enumerated from the installed nats_bench at test time (its NATStopology,
NATSsize, ArchResults and ResultsCount classes and their instances), so a member nb360 lacks, or one
a newer nats_bench adds, fails `test_every_member_is_covered` instead of going unnoticed. Every case
below is one expression run on both libraries (same arguments, same `random` state), and their
outcomes (values, result objects, printed text, errors) must agree, up to:

- float32 storage: numbers agree to 1e-6 relative (printed numbers to their last printed digit);
- the deliberate differences in DIFFERENCES, each with its reason (README, "NATS-Bench compatibility").
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from nats_compare import same, same_text
from nats_records import FIXTURE_DIR, SSS_FIXTURE_DIR, fixture_single_file
from nb360.compat import nats
from nb360.errors import InputError
from nb360.table.importer import import_nats

nats_bench = pytest.importorskip("nats_bench")
from nats_bench.api_size import NATSsize as RefSize  # noqa: E402
from nats_bench.api_topology import NATStopology as RefTopology  # noqa: E402

DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
HPS = {"tss": ("12", "200"), "sss": ("01", "12", "90")}
ARCHS = (0, 11, 284)
# Deliberate differences: (member, why). Cases that touch them are compared with the stated rule instead.
DIFFERENCES = {
    "get_net_param": "nb360 tables hold no weights: raises WeightsUnavailableError naming the -full archive "
                     "(nats_bench returns the None that -simple files store)",
    "show(-1)": "prints every evaluated arch (nats_bench 1.8 raises KeyError(-1) there)",
    "unrecorded arch": "an arch the table does not record raises ValueError (nats_bench in fast mode: an "
                       "AssertionError about a missing file)",
    "enforce_all": "find_best(enforce_all=True) searches the recorded archs (nats_bench stops at the first "
                   "missing per-arch file)",
    "filename": "the table's file name and path (nats_bench: the pickle file or directory)",
    "hp default": "hp must be passed unless create(..., nats_defaults=True)",
    "reload": "reload(None, i) re-reads the table without nats_bench's warning about a missing -full archive "
              "(and needs no $TORCH_HOME, where nats_bench raises KeyError)",
}
# Result-object members that change the object: each case gets fresh objects.
MUTATING = {"clear_params", "load_state_dict", "reset_latency", "reset_pseudo_eval_times", "reset_pseudo_train_times",
            "update", "reset_eval", "update_OLD_eval", "update_eval", "update_latency", "update_train_info"}
# Per-arch queries: answered the same way in both modes, so the single-file run keeps only their last
# BAD_INPUT_CASES cases (the bad inputs, whose errors do depend on the mode in nats_bench).
PER_ARCH = {"get_more_info", "get_cost_info", "get_latency", "query_by_index", "simulate_train_eval", "get_net_config"}
BAD_INPUT_CASES = 2
# Members whose cases change the API's state: each gets fresh APIs; the others share one pair per test.
STATEFUL = {"reset_fast_mode", "reset_archive_dir", "reload", "clear_params", "avaliable_hps", "evaluated_indexes",
            "arch2infos_dict", "reset_time", "used_time", "show"}


# ---------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("conformance")
    return {"tss": import_nats(FIXTURE_DIR, tmp / "tss.h5"), "sss": import_nats(SSS_FIXTURE_DIR, tmp / "sss.h5"),
            "tss-file": fixture_single_file(tmp / "tss.pickle.pbz2", FIXTURE_DIR),
            "sss-file": fixture_single_file(tmp / "sss.pickle.pbz2", SSS_FIXTURE_DIR)}


def make_pair(tables: dict[str, Any], space: str, fast: bool = True) -> tuple[Any, Any]:
    """Fresh (nats_bench, nb360) APIs on the same records; nats_defaults so hp-less calls compare too."""
    ref_cls = RefTopology if space == "tss" else RefSize
    source = str(FIXTURE_DIR if space == "tss" else SSS_FIXTURE_DIR) if fast else str(tables[f"{space}-file"])
    ref = ref_cls(source, fast, False)
    ours = nats.create(tables[space], space, fast_mode=fast, verbose=False, nats_defaults=True)
    return ref, ours


# ---------------------------------------------------------------------------------------------- comparison
def outcome(fn: Callable[[Any], Any], target: Any, seed: int) -> tuple[str, Any, str, list[str]]:
    """('ok', value, stdout, warnings) or ('raise', exception, stdout, warnings) of fn(target)."""
    random.seed(seed)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = fn(target)
            kind = "ok"
        except Exception as exc:  # noqa: BLE001 - the outcome is what is compared
            value, kind = exc, "raise"
    return kind, value, out.getvalue(), [str(w.category.__name__) for w in caught]


def compare(fn: Callable[[Any], Any], ref: Any, ours: Any, where: str, seed: int = 0, warns: bool = True) -> None:
    """Run fn on both and compare outcome, printed text and (unless warns=False) warnings."""
    r, o = outcome(fn, ref, seed), outcome(fn, ours, seed)
    if r[0] == "raise":
        assert o[0] == "raise", f"{where}: nats_bench raised {r[1]!r}, nb360 returned {o[1]!r}"
        assert isinstance(o[1], type(r[1])), f"{where}: nats_bench raised {r[1]!r}, nb360 {o[1]!r}"
    else:
        assert o[0] == "ok", f"{where}: nats_bench returned {r[1]!r}, nb360 raised {o[1]!r}"
        same(r[1], o[1], where)
    assert same_text(r[2], o[2]), f"{where}: printed\n{r[2]}\nvs\n{o[2]}"
    assert r[3] == o[3] or not warns, f"{where}: warnings {r[3]} vs {o[3]}"


# ---------------------------------------------------------------------------------------------- cases
def api_cases(space: str) -> dict[str, list[Callable[[Any], Any]]]:
    """Member name -> expressions that exercise it (each run on both libraries)."""
    hps = HPS[space]
    full = "200" if space == "tss" else "90"
    a11 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|" \
        if space == "tss" else "8:8:8:16:32"
    cases: dict[str, list[Callable[[Any], Any]]] = {
        "arch": [lambda x, i=i: x.arch(i) for i in (0, 11, 284, 1, 100000, -1)],
        "__getitem__": [lambda x: x[11], lambda x: x[-1], lambda x: x[3:6]],
        "__len__": [len],
        "__repr__": [lambda x: re.sub(r"file=.*\)", "file=F)", repr(x))],
        "query_index_by_arch": [lambda x: x.query_index_by_arch(a11), lambda x: x.query_index_by_arch(11),
                                lambda x: x.query_index_by_arch("not an arch"), lambda x: x.query_index_by_arch(10**6),
                                lambda x: x.query_index_by_arch(type("S", (), {"tostr": lambda s: a11})()),
                                lambda x: x.query_index_by_arch(3.5), lambda x: x.query_index_by_arch(np.int64(11))],
        "get_more_info": [],
        "get_cost_info": [],
        "get_latency": [],
        "simulate_train_eval": [],
        "query_by_index": [],
        "query_meta_info_by_index": [],
        "query_info_str_by_arch": [lambda x, h=h: x.query_info_str_by_arch(284, h) for h in hps] + [
            lambda x: x.query_info_str_by_arch(a11, full), lambda x: x.query_info_str_by_arch(11),
            lambda x: x.query_info_str_by_arch(11, "7")],
        "query_by_arch": [lambda x: x.query_by_arch(a11, full), lambda x: x.query_by_arch(0, hps[0])],
        "get_net_config": [lambda x, i=i, d=d: x.get_net_config(i, d) for i in ARCHS for d in DATASETS] + [
            lambda x: x.get_net_config(11, "nope")],
        "find_best": [lambda x, d=d, s=s, h=h: x.find_best(d, s, hp=h, enforce_all=False)
                      for d in DATASETS for s in ("valid", "test", "train", "ori-test") for h in hps] + [
            lambda x: x.find_best("cifar100", "x-valid", flop_max=10, hp=full, enforce_all=False),
            lambda x: x.find_best("cifar10", "valid", param_max=0.05, hp=full, enforce_all=False),
            lambda x: x.find_best("cifar10", "valid", flop_max=0.001, hp=full, enforce_all=False)],
        "statistics": [lambda x, d=d, h=h: x.statistics(d, h) for d in DATASETS for h in hps] + [
            lambda x: x.statistics("svhn", hps[0])],
        "show": [lambda x, i=i: x.show(i) for i in (11, 284, 100000)],
        "random": [lambda x: [x.random() for _ in range(5)]],
        "reset_time": [lambda x: (x.simulate_train_eval(11, "cifar10", hp=hps[-1]), x.reset_time(), x.used_time)[1:]],
        "used_time": [lambda x: [x.simulate_train_eval(i, "cifar100", hp=hps[-1])[3] for i in ARCHS] + [x.used_time]],
        "clear_params": [lambda x: (x.get_more_info(11, "cifar10", hp=full), x.clear_params(11), x.clear_params(11, full),
                                    x.query_by_index(11, "cifar10", full)[777].net_state_dict)[1:],
                         lambda x: x.clear_params(5), lambda x: (x.get_more_info(11, "cifar10", hp=full),
                                                                 x.clear_params(11, "3"))],
        "reload": [lambda x: (x.reload(None, 11), sorted(x.evaluated_indexes))[1],
                   lambda x: x.reload(None, 100000)],
        "avaliable_hps": [lambda x: sorted(x.avaliable_hps),
                          lambda x: (x.get_more_info(11, "cifar10", hp=full), sorted(x.avaliable_hps))[1]],
        "evaluated_indexes": [lambda x: sorted(x.evaluated_indexes),
                              lambda x: ([x.get_cost_info(i, "cifar10", hp=full) for i in (284, 0)],
                                         sorted(x.evaluated_indexes))[1]],
        "arch2infos_dict": [lambda x: (x.get_more_info(11, "cifar100", hp=full), sorted(x.arch2infos_dict))[1],
                            lambda x: (x.get_more_info(11, "cifar100", hp=full), dict(x.arch2infos_dict[11]))[1],
                            lambda x: x.arch2infos_dict[0]],
        "archstr2index": [lambda x: x.archstr2index == {a: i for i, a in enumerate(x.meta_archs)},
                          lambda x: x.archstr2index[a11]],
        "meta_archs": [lambda x: list(x.meta_archs)],
        "filename": [lambda x: isinstance(x.filename, str)],  # DIFFERENCES["filename"]
        "archive_dir": [lambda x: x.archive_dir is None],  # DIFFERENCES["filename"]
        "reset_archive_dir": [lambda x: (x.reset_archive_dir("/elsewhere"), x.archive_dir)],
        "fast_mode": [lambda x: x.fast_mode],
        "reset_fast_mode": [lambda x: (x.reset_fast_mode(False), x.fast_mode)],
        "full_epochs_in_paper": [lambda x: x.full_epochs_in_paper],
        "full_train_epochs": [lambda x: x.full_train_epochs],
        "is_size": [lambda x: x.is_size],
        "is_topology": [lambda x: x.is_topology],
        "search_space_name": [lambda x: x.search_space_name],
        "verbose": [lambda x: x.verbose],
        "get_net_param": [],  # DIFFERENCES["get_net_param"]: test_deliberate_differences
    }
    for i in ARCHS:
        for d in DATASETS:
            for h in hps:
                cases["get_cost_info"].append(lambda x, i=i, d=d, h=h: x.get_cost_info(i, d, hp=h))
                if i == 284:
                    cases["get_latency"].append(lambda x, i=i, d=d, h=h: x.get_latency(i, d, hp=h))
                    cases["query_by_index"].append(lambda x, i=i, d=d, h=h: x.query_by_index(i, d, h))
                for e in (None, 0, 11, 150, 200, -1):
                    for r in (False, True, 777, 111, 5):
                        cases["get_more_info"].append(
                            lambda x, i=i, d=d, h=h, e=e, r=r: x.get_more_info(i, d, iepoch=e, hp=h, is_random=r))
        for h in hps:
            cases["query_meta_info_by_index"].append(lambda x, i=i, h=h: x.query_meta_info_by_index(i, h))
            cases["query_by_index"].append(lambda x, i=i, h=h: x.query_by_index(i, None, h))
            for d in ("cifar10", "cifar100", "ImageNet16-120", "cifar10-valid"):
                for e in (None, 11):
                    cases["simulate_train_eval"].append(
                        lambda x, i=i, d=d, h=h, e=e: x.simulate_train_eval(i, d, iepoch=e, hp=h))
    cases["get_more_info"] += [lambda x: x.get_more_info(a11, "cifar10", hp=full),
                               lambda x: x.get_more_info(100000, "cifar10"), lambda x: x.get_more_info(11, "cifar10"),
                               lambda x: x.get_more_info(11, "svhn", hp=full),
                               lambda x: x.get_more_info(11, "cifar10", hp="7"),
                               lambda x: x.get_more_info(11, "cifar10", hp=int(full), is_random=False)]
    cases["get_cost_info"] += [lambda x: x.get_cost_info(11, "cifar10"), lambda x: x.get_cost_info(11, "svhn", full)]
    cases["simulate_train_eval"] += [lambda x: x.simulate_train_eval(a11, "cifar10", hp=full),
                                     lambda x: x.simulate_train_eval(11, "cifar10", hp=full, account_time=False)]
    cases["query_by_index"] += [lambda x: x.query_by_index(11, "svhn", full), lambda x: x.query_by_index(11, "cifar10")]
    if space == "tss":
        cases["get_unique_str"] = [lambda x, i=i: x.get_unique_str(i) for i in (*ARCHS, 1, 15624)] + [
            lambda x: x.get_unique_str(a11)]
        cases["str2lists"] = [lambda x: x.str2lists(a11)]
        cases["str2matrix"] = [lambda x: x.str2matrix(a11),
                               lambda x: x.str2matrix(a11, ("none", "nor_conv_3x3", "avg_pool_3x3"))]
    return cases


def object_cases(space: str) -> tuple[dict[str, list[Callable[[Any], Any]]], dict[str, list[Callable[[Any], Any]]]]:
    """Cases for ArchResults (run on query_meta_info_by_index(284, hp)) and ResultsCount (one seed's record)."""
    arch = {
        "all_results": [lambda a: a.all_results], "arch_index": [lambda a: a.arch_index],
        "arch_str": [lambda a: a.arch_str], "clear_net_done": [lambda a: a.clear_net_done],
        "dataset_seed": [lambda a: a.dataset_seed], "arch_idx_str": [lambda a: a.arch_idx_str()],
        "clear_params": [lambda a: (a.clear_params(), a.state_dict())[1]],
        "create_from_state_dict": [lambda a: type(a).create_from_state_dict(a.state_dict())],
        "debug_test": [lambda a: a.debug_test()],
        "get_compute_costs": [lambda a, d=d: a.get_compute_costs(d) for d in (*DATASETS, "svhn")],
        "get_dataset_names": [lambda a: a.get_dataset_names()],
        "get_dataset_seeds": [lambda a, d=d: a.get_dataset_seeds(d) for d in (*DATASETS, "svhn")],
        "get_latency": [lambda a, d=d: a.get_latency(d) for d in DATASETS],
        "get_metrics": [lambda a, d=d, s=s, e=e, r=r: a.get_metrics(d, s, iepoch=e, is_random=r)
                        for d in DATASETS for s in ("train", "valid", "x-valid", "x-test", "ori-test", "nope")
                        for e in (None, 0, 5) for r in (False, True, 777, 5)],
        "get_net_param": [],  # DIFFERENCES["get_net_param"]
        "get_total_epoch": [lambda a: a.get_total_epoch(), lambda a: a.get_total_epoch("cifar100"),
                            lambda a: a.get_total_epoch(3)],
        "load_state_dict": [lambda a: (a.load_state_dict({"arch_str": "x"}), a.arch_str)[1]],
        "query": [lambda a, d=d: a.query(d) for d in DATASETS] + [lambda a: a.query("cifar10", 777)],
        "reset_latency": [lambda a: (a.reset_latency("cifar100", None, 0.5), a.get_compute_costs("cifar100"))[1]],
        "reset_pseudo_eval_times": [lambda a: (a.reset_pseudo_eval_times("cifar100", 777, "x-valid", 2.0),
                                               a.get_compute_costs("cifar100"), a.get_metrics("cifar100", "x-valid"))],
        "reset_pseudo_train_times": [lambda a: (a.reset_pseudo_train_times("cifar10", None, 3.0),
                                                a.get_metrics("cifar10", "train", 4))],
        "state_dict": [lambda a: a.state_dict()],
        "update": [lambda a: (a.update("cifar10", 4242, a.query("cifar10", 777)), a.get_dataset_seeds("cifar10"),
                              a.get_metrics("cifar10", "train")),
                   lambda a: a.update("cifar10", 777, a.query("cifar10", 777))],
    }
    record = {name: [lambda r, n=name: getattr(r, n)] for name in (
        "arch_config", "epochs", "eval_acc1es", "eval_losses", "eval_names", "eval_times", "flop", "latency", "name",
        "net_state_dict", "params", "seed", "train_acc1es", "train_acc5es", "train_losses", "train_times")}
    record.update({
        "create_from_state_dict": [lambda r: type(r).create_from_state_dict(r.state_dict())],
        "get_config": [lambda r: r.get_config(None), lambda r: r.get_config(str)],
        "get_eval": [lambda r, n=n, e=e: r.get_eval(n, e) for n in ("valid", "x-valid", "x-test", "ori-test", "nope")
                     for e in (None, 0, 5, 11, 200, -1)],
        "get_eval_set": [lambda r: r.get_eval_set()], "get_latency": [lambda r: r.get_latency()],
        "get_net_param": [],  # DIFFERENCES["get_net_param"]
        "get_times": [lambda r: r.get_times()], "get_total_epoch": [lambda r: r.get_total_epoch()],
        "get_train": [lambda r, e=e: r.get_train(e) for e in (None, 0, 5, 11, 200, -1)],
        "judge_valid": [lambda r, e=e: r.judge_valid(e) for e in (0, 11, 12, 200, -1)],
        "load_state_dict": [lambda r: (r.load_state_dict({"seed": "9"}), r.seed)[1]],
        "reset_eval": [lambda r: (r.reset_eval(), r.get_times(), r.state_dict())[1:]],
        "reset_pseudo_eval_times": [lambda r: (r.reset_pseudo_eval_times("ori-test", 1.5), r.get_times(),
                                               r.get_eval("ori-test"))[1:],
                                    lambda r: r.reset_pseudo_eval_times("nope", 1.5)],
        "reset_pseudo_train_times": [lambda r: (r.reset_pseudo_train_times(2.5), r.get_train(), r.get_times())[1:]],
        "state_dict": [lambda r: r.state_dict()],
        "update_OLD_eval": [lambda r: (r.update_OLD_eval("old", {0: 1.0}, {0: 2.0}), r.eval_acc1es.get("old@0"))[1]],
        "update_eval": [lambda r: (r.update_eval({"new@0": 1.0}, {"new@0": 2.0}, {"new@0": 0.5}), r.eval_names)[1]],
        "update_latency": [lambda r: (r.update_latency([0.25]), r.get_latency())[1]],
        "update_train_info": [lambda r: (r.update_train_info({0: 1.0}, None, {0: 2.0}, None), r.get_train(0))[1]],
        "__repr__": [repr],
    })
    arch["__repr__"] = [repr]
    return arch, record


def public_members(cls: type, instance: Any = None) -> set[str]:
    """The public names of a nats_bench class (and instance), plus the dunders scripts use."""
    names = {n for n in dir(cls) if not n.startswith("_")}
    if instance is not None:
        names |= {n for n in vars(instance) if not n.startswith("_")}
    return names | {"__repr__"} | ({"__getitem__", "__len__"} if hasattr(cls, "__getitem__") else set())


# ---------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("space", ["tss", "sss"])
def test_every_member_is_covered(tables, space) -> None:
    ref, ours = make_pair(tables, space)
    members = public_members(type(ref), ref)
    cases = api_cases(space)
    assert members - set(cases) == set(), f"nats_bench members without a conformance case: {members - set(cases)}"
    assert [m for m in members if not hasattr(ours, m)] == [], "members nb360's facade lacks"
    ar_ref, ar_ours = ref.query_meta_info_by_index(284, HPS[space][0]), ours.query_meta_info_by_index(284, HPS[space][0])
    rc_ref = next(iter(ar_ref.query("cifar10").values()))
    rc_ours = next(iter(ar_ours.query("cifar10").values()))
    arch_cases, record_cases = object_cases(space)
    for obj_ref, obj_ours, cases_ in ((ar_ref, ar_ours, arch_cases), (rc_ref, rc_ours, record_cases)):
        members = public_members(type(obj_ref), obj_ref)
        assert members - set(cases_) == set(), f"{type(obj_ref).__name__} members without a case"
        assert [m for m in members if not hasattr(obj_ours, m)] == [], f"{type(obj_ref).__name__} members missing"


@pytest.mark.parametrize("space", ["tss", "sss"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast_mode", "single_file"])
def test_api_answers_as_nats_bench(tables, space, fast, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nats_bench's reload(None, ...) reads it
    compared = 0
    shared = make_pair(tables, space, fast)
    for member, cases in api_cases(space).items():
        if not fast and member in PER_ARCH:  # the data path is the same in both modes: its bad-input cases only
            cases = cases[-BAD_INPUT_CASES:]
        ref, ours = make_pair(tables, space, fast) if member in STATEFUL else shared
        if member == "find_best" and fast:  # touch the archs so both APIs know them (enforce_all=False)
            for x in (ref, ours):
                for i in ARCHS:
                    x.get_cost_info(i, "cifar10", hp=HPS[space][-1])
        for k, case in enumerate(cases):
            compare(case, ref, ours, f"{space} {member} case {k}", seed=k, warns=member != "reload")
            compared += 1
    assert compared > (600 if fast else 100)


def test_unique_strings_match_over_the_whole_space(tables) -> None:
    ref, ours = make_pair(tables, "tss")
    unique = [ours.get_unique_str(i) for i in range(len(ours))]
    assert unique == [ref.get_unique_str(i) for i in range(len(ref))] and len(set(unique)) == 6466


@pytest.mark.parametrize("space", ["tss", "sss"])
@pytest.mark.parametrize("path", ["fast", "built"], ids=["untouched objects", "objects read into Python"])
def test_result_objects_answer_as_nats_bench(tables, space, path) -> None:
    """ArchResults / ResultsCount cases, on untouched objects (compiled path) and after reading their state."""
    arch_cases, record_cases = object_cases(space)
    hp = HPS[space][1]
    ref_api, our_api = make_pair(tables, space)
    makers = (lambda x: x.query_meta_info_by_index(284, hp), lambda x: x.query_by_index(284, "cifar100", hp)[777])
    for cases_, make, name in ((arch_cases, makers[0], "ArchResults"), (record_cases, makers[1], "ResultsCount")):
        shared = None
        for member, cases in cases_.items():
            for k, case in enumerate(cases):
                if member in MUTATING or shared is None:
                    pair = [make(x) for x in (ref_api, our_api)]
                    if path == "built":
                        pair[1].state_dict()  # read the whole state into Python: the object path
                    shared = shared or pair
                compare(case, *(pair if member in MUTATING else shared), f"{space} {name}.{member} case {k}", seed=k)


@pytest.mark.parametrize("space", ["tss", "sss"])
def test_changed_shared_objects_change_the_answers(tables, space) -> None:
    """As in nats_bench, arch2infos_dict's objects are shared: changing them changes get_cost_info / get_more_info."""
    full = HPS[space][-1]
    ref, ours = make_pair(tables, space)

    def change(x: Any) -> Any:
        x.get_more_info(11, "cifar100", hp=full)
        x.arch2infos_dict[11][full].reset_latency("cifar100", None, 0.75)
        x.arch2infos_dict[11][full].reset_pseudo_train_times("cifar100", None, 1.0)
        return (x.get_cost_info(11, "cifar100", hp=full), x.get_more_info(11, "cifar100", hp=full, is_random=False),
                x.simulate_train_eval(11, "cifar100", hp=full), x.get_latency(11, "cifar100", hp=full),
                x.find_best("cifar100", "valid", hp=full, enforce_all=False))

    compare(change, ref, ours, f"{space} shared objects")


@pytest.mark.parametrize("space", ["tss", "sss"])
def test_deliberate_differences(tables, space, tmp_path) -> None:
    ref, ours = make_pair(tables, space)
    full = HPS[space][-1]
    # get_net_param: nats_bench returns the None a -simple file stores; nb360 says where weights are.
    assert ref.get_net_param(11, "cifar10", 777, hp=full) is None
    for call in (lambda: ours.get_net_param(11, "cifar10", 777, hp=full),
                 lambda: ours.query_by_index(11, "cifar10", full)[777].get_net_param(),
                 lambda: ours.query_meta_info_by_index(11, full).get_net_param("cifar10", None)):
        with pytest.raises(nats.WeightsUnavailableError, match="-full"):
            call()
    # show(-1): nats_bench 1.8 raises KeyError(-1) once an arch is evaluated; nb360 prints every evaluated arch.
    for x in (ref, ours):
        x.get_more_info(11, "cifar10", hp=full)
    with pytest.raises(KeyError), contextlib.redirect_stdout(io.StringIO()):
        ref.show(-1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ours.show(-1)
    assert "000011-th architecture" in out.getvalue() and out.getvalue().count("epochs >") == len(HPS[space])
    # An arch the table does not record: ValueError (nats_bench, fast mode: AssertionError).
    with pytest.raises(AssertionError):
        ref.get_more_info(5, "cifar10", hp=full)
    with pytest.raises(ValueError, match="Did not find 5"):
        ours.get_more_info(5, "cifar10", hp=full)
    # find_best(enforce_all=True) searches the recorded archs.
    with pytest.raises(AssertionError):
        ref.find_best("cifar10", "valid", hp=full, enforce_all=True)
    best = ours.find_best("cifar10", "valid", hp=full, enforce_all=True)
    assert best[0] in ARCHS and sorted(ours.evaluated_indexes) == list(ARCHS)
    # hp has no silent default unless asked for.
    strict = nats.create(tables[space], space, fast_mode=True, verbose=False)
    with pytest.raises(InputError, match="nats_defaults=True"):
        strict.get_more_info(11, "cifar10")
    assert strict.get_more_info(11, "cifar10", hp="12")["train-loss"] > 0
    # filename / archive_dir name the table.
    assert ours.filename.endswith(".h5") and ours.archive_dir == str(tables[space])


def test_fast_path_and_object_path_agree_bit_for_bit(tables) -> None:
    """The compiled answers equal the Python reference on the same table values (no float32 slack here)."""
    from nb360.compat.nats.reference import more_info

    api = nats.create(tables["tss"], "tss", fast_mode=True, verbose=False)
    for i in ARCHS:
        for d in DATASETS:
            for h in ("12", "200"):
                objects = api.query_meta_info_by_index(i, h)
                objects.all_results  # noqa: B018 - the Python path
                for e in (None, 0, 11):
                    for r in (False, 777, True):
                        answers = []
                        for fn in (lambda: api.get_more_info(i, d, iepoch=e, hp=h, is_random=r),
                                   lambda: more_info(objects, d, e, h, r)):
                            random.seed(1)
                            try:
                                answers.append(fn())
                            except (KeyError, ValueError) as exc:
                                answers.append("KeyError" if isinstance(exc, KeyError) else "ValueError")
                        assert answers[0] == answers[1], (i, d, h, e, r, answers)
                assert api.get_cost_info(i, d, hp=h) == objects.get_compute_costs(d)
