"""`NATStopology` and `NATSsize`: nats_bench 1.8's API classes answered from an nb360 table.

Every public member of nats_bench's classes exists with its semantics (the differential test in
tests/test_nats_conformance.py enumerates them from the installed nats_bench). The per-query calls
(get_more_info, get_cost_info, simulate_train_eval, get_latency, query_by_index, ...) go straight
to compiled lookups (context.Plan); the Python layer only resolves arguments, draws from `random`
exactly as nats_bench does (so searches give nats_bench's trajectories), and keeps nats_bench's
bookkeeping (`evaluated_indexes`, `arch2infos_dict`, `used_time`).
"""

from __future__ import annotations

import os
import random
import time
import warnings
from collections.abc import Iterator, MutableMapping
from typing import Any

import numpy as np

from ... import _table
from ...errors import DataError, InputError
from ...space import nb201
from ...table import Table
from . import location
from .context import STOCK_DATASETS, TableContext
from .errors import NATSKeyError, translate
from .printing import END_BANNER, epochs_banner, information_lines
from .results import ArchResults, _ArchSource, weights_error

_REQUIRED: Any = object()  # hp not given


def _now() -> str:
    return time.strftime("[%Y-%m-%d %X]", time.gmtime())


def _reference_remap(dataset: str, metric_on_set: str) -> tuple[str, str]:
    """nats_bench's remap_dataset_set_names (find_best's dataset / set naming)."""
    if dataset == "cifar10" and metric_on_set == "valid":
        return "cifar10-valid", "x-valid"
    if dataset == "cifar10" and metric_on_set == "test":
        return "cifar10", "ori-test"
    if dataset in ("cifar100", "ImageNet16-120") and metric_on_set in ("valid", "test"):
        return dataset, "x-valid" if metric_on_set == "valid" else "x-test"
    return dataset, metric_on_set


class _ArchInfos(MutableMapping):
    """`api.arch2infos_dict`: {index: {hp: ArchResults}} for the evaluated archs, built on first access.

    As in nats_bench, the objects are shared: what a caller changes in them (reset_latency, ...) the
    API's own answers for that arch then reflect.
    """

    def __init__(self, api: _NATSAPI) -> None:
        self._api = api
        self.store: dict[int, dict[str, ArchResults]] = {}

    def __getitem__(self, index: int) -> dict[str, ArchResults]:
        hp2results = self.store.get(index)
        if hp2results is None:
            if index not in self._api.evaluated_indexes:
                raise KeyError(index)
            hp2results = self.store[index] = self._api._fresh_results(index)
        return hp2results

    def __setitem__(self, index: int, value: dict[str, ArchResults]) -> None:
        self.store[index] = value
        self._api.evaluated_indexes.add(index)

    def __delitem__(self, index: int) -> None:
        self.store.pop(index, None)
        self._api.evaluated_indexes.remove(index)

    def __contains__(self, index: object) -> bool:
        return index in self.store or index in self._api.evaluated_indexes

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._api.evaluated_indexes))

    def __len__(self) -> int:
        return len(self._api.evaluated_indexes)

    def __repr__(self) -> str:
        return f"arch2infos_dict({len(self)} archs, {len(self.store)} built)"


class _NATSAPI:
    """What NATStopology and NATSsize share (nats_bench's NASBenchMetaAPI)."""

    _space_name = ""  # "topology" or "size"
    _table_space = ""  # the table's space name: "nb201" or "sss"
    _full_epochs = 0
    _stock_base = ""

    def __init__(self, file_path_or_dict: Any = None, fast_mode: bool = False, verbose: bool = True, *,
                 nats_defaults: bool = False) -> None:
        if file_path_or_dict is None:
            path = location.default_table(self._space_name)
            print(f"{_now()} Try to use the default NATS-Bench ({self._space_name}) path from fast_mode={fast_mode} "
                  f"and path={path}.")
            table = Table.open(path)
        elif isinstance(file_path_or_dict, Table):
            table = file_path_or_dict
        elif isinstance(file_path_or_dict, (str, os.PathLike)):
            path = os.fspath(file_path_or_dict)
            if verbose:
                print(f"{_now()} Try to create the NATS-Bench ({self._space_name}) api from {path} with "
                      f"fast_mode={fast_mode}")
            if os.path.isdir(path) or path.endswith((".pbz2", ".pickle")):
                raise DataError(f"{path} is a released NATS-Bench file, not an nb360 table: convert it once with "
                                f"`nb360 table import {path}` and pass the .h5 it writes")
            table = Table.open(path)
        else:
            raise InputError(f"create() takes an nb360 table path (or None for the default table), not "
                             f"{type(file_path_or_dict).__name__}: nb360 does not load NATS-Bench's in-memory dicts; "
                             "write them out and convert them with `nb360 table import`")
        if table.space != self._table_space:
            raise InputError(f"{table.path} holds the {table.space} space; {type(self).__name__} needs a "
                             f"{self._table_space} table (NATS-Bench's {self._space_name} space)")
        self._ctx = TableContext(table)
        self.filename = os.path.basename(table.path)
        self._fast_mode = fast_mode
        self._archive_dir = table.path if fast_mode else None
        self._default_hp = "12" if nats_defaults else _REQUIRED
        self._used_time = 0
        self._plans = self._ctx._plans
        self._configs: dict[tuple[int, str], dict[str, Any]] = {}
        self.evaluated_indexes: set[int] = set() if fast_mode else set(np.flatnonzero(self._ctx.recorded).tolist())
        self.arch2infos_dict = _ArchInfos(self)
        self._cache = self.arch2infos_dict.store
        self.verbose = verbose
        if verbose:
            print(f"{_now()} Create NATS-Bench ({self._space_name}) done with {len(self.evaluated_indexes)}/"
                  f"{len(self)} architectures avaliable.")

    # ------------------------------------------------------------------ facts
    @property
    def table(self) -> Table:
        """The nb360 Table behind this API."""
        return self._ctx.table

    @property
    def meta_archs(self) -> list[str]:
        """Every arch string in index order."""
        return self._ctx.arch_strs

    @property
    def archstr2index(self) -> dict[str, int]:
        """Arch string -> index."""
        return self._ctx.str2index

    def __len__(self) -> int:
        return self._ctx.num_archs

    def __getitem__(self, index: Any) -> Any:
        return self._ctx.arch_strs[index]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self.evaluated_indexes)}/{len(self)} architectures, "
                f"fast_mode={self.fast_mode}, file={self.filename})")

    @property
    def avaliable_hps(self) -> list[str]:  # sic: nats_bench's spelling
        """The fidelities (hp) of the archs loaded so far (fast mode) or of the table."""
        evaluated = np.fromiter(self.evaluated_indexes, dtype=np.int64, count=len(self.evaluated_indexes))
        return [hp for hp in self._ctx.hps if evaluated.size and self._ctx.recorded_in_hp(hp)[evaluated].any()]

    @property
    def used_time(self) -> float:
        return self._used_time

    @property
    def search_space_name(self) -> str:
        return self._space_name

    @property
    def fast_mode(self) -> bool:
        return self._fast_mode

    @property
    def archive_dir(self) -> Any:
        """Where per-arch records are read from in fast mode (here: the table), None otherwise."""
        return self._archive_dir

    @property
    def full_train_epochs(self) -> int:
        return self._full_epochs

    @property
    def full_epochs_in_paper(self) -> int:
        return self._full_epochs

    @property
    def is_size(self) -> bool:
        return self._space_name == "size"

    @property
    def is_topology(self) -> bool:
        return self._space_name == "topology"

    def reset_archive_dir(self, archive_dir: Any) -> None:
        self._archive_dir = archive_dir

    def reset_fast_mode(self, fast_mode: bool) -> None:
        self._fast_mode = fast_mode

    def reset_time(self) -> None:
        self._used_time = 0

    @staticmethod
    def _say(message: str) -> None:
        """nats_bench's verbose line (callers check self._verbose first: building the message costs)."""
        print(f"{_now()} {message}")

    # ------------------------------------------------------------------ indices
    @property
    def verbose(self) -> bool:
        """Print a line per call, as nats_bench does."""
        return self._verbose

    @verbose.setter
    def verbose(self, value: bool) -> None:
        self._verbose = value
        if value:  # the class's methods print; drop the silent compiled ones
            self.__dict__.pop("arch", None)
            self.__dict__.pop("query_index_by_arch", None)

    def _install_lookups(self) -> None:
        """Put compiled arch / query_index_by_arch on this instance (they answer in ~0.04 µs; see nats_plan.cpp)."""
        if not self._verbose:
            self.arch, self.query_index_by_arch = _table.nats_lookups(
                self._ctx.arch_strs, self._ctx.str2index, self._arch, self._query_index)

    def arch(self, index: int) -> str:
        """The arch string of an index."""
        self._install_lookups()
        return self._arch(index)

    def _arch(self, index: int) -> str:
        if self._verbose:
            self._say(f"Call the arch function with index={index}")
        if index < 0 or index >= len(self):
            raise InputError(f"invalid index : {index} vs. {len(self)}.")
        return self._ctx.arch_strs[index]

    def query_index_by_arch(self, arch: Any) -> int:
        """The index of an arch given as index, string or object with .tostr(); -1 when not in the space."""
        self._install_lookups()
        return self._query_index(arch)

    def _query_index(self, arch: Any) -> int:
        if self._verbose:
            self._say(f"Call query_index_by_arch with arch={arch}")
        if isinstance(arch, int):
            if 0 <= arch < self._ctx.num_archs:
                return arch
            raise InputError(f"Invalid architecture index {arch} vs [0, {len(self)}].")
        if isinstance(arch, str):
            return self._ctx.str2index.get(arch, -1)
        if hasattr(arch, "tostr"):
            return self._ctx.str2index.get(arch.tostr(), -1)
        return -1

    def random(self) -> int:
        """A random index (Python's `random`, as nats_bench)."""
        return random.randint(0, len(self) - 1)

    def _touch(self, index: Any) -> None:
        """nats_bench's _prepare_info: the arch must be recorded; fast mode marks it evaluated."""
        if index in self.evaluated_indexes:
            return
        if type(index) is not int and not isinstance(index, (int, np.integer)):
            raise InputError(f"invalid index of {index!r}: pass an int, or use query_index_by_arch first")
        if not 0 <= index < len(self):
            raise InputError(f"invalid index of {index}")
        if not self._ctx.recorded[index]:
            raise InputError(f"Did not find {index} in this table: it records {int(self._ctx.recorded.sum())} of "
                             f"{len(self)} archs")
        if self._fast_mode:
            self.evaluated_indexes.add(int(index))

    def _resolve(self, arch: Any) -> int:
        index = self.query_index_by_arch(arch)
        self._touch(index)
        return index

    def _hp(self, hp: Any) -> Any:
        if hp is _REQUIRED:
            if self._default_hp is _REQUIRED:
                raise InputError("pass hp= explicitly ('200'/'90' for full training, '12' for the low-fidelity "
                                 "runs): nb360's NATS facade has no silent default, unlike nats_bench's hp='12'; "
                                 "create(..., nats_defaults=True) restores nats_bench's default")
            return self._default_hp
        return hp

    def _plan(self, dataset: str, hp: Any) -> Any:
        plan = self._plans.get((dataset, hp))
        if plan is None:
            plan = self._ctx.plan(dataset, self._hp(hp))
        return plan

    def _fresh_results(self, index: int) -> dict[str, ArchResults]:
        return {hp: ArchResults(index, self._ctx.arch_strs[index], source=_ArchSource(self._ctx, index, hp))
                for hp in self._ctx.arch_hps(index)}

    def _results(self, index: int, hp: Any) -> ArchResults:
        """The ArchResults of (index, hp): the shared one when the caller has built it, else a fresh one."""
        hp = str(self._hp(hp))
        if index in self._cache:
            results = self._cache[index].get(hp)
            if results is None:
                raise NATSKeyError(f"arch {index} has no hp {hp!r}; it has {', '.join(self._cache[index])}")
            return results
        if hp not in self._ctx.arch_hps(index):
            raise NATSKeyError(f"arch {index} has no hp {hp!r}; it has {', '.join(self._ctx.arch_hps(index))}")
        return ArchResults(index, self._ctx.arch_strs[index], source=_ArchSource(self._ctx, index, hp))

    # ------------------------------------------------------------------ per-query calls
    def get_more_info(self, index: Any, dataset: str, iepoch: int | None = None, hp: Any = _REQUIRED,
                      is_random: bool | int = True) -> dict[str, Any]:
        """train-*, valid-*, test-*, valtest-* of an arch after `iepoch` (None: last) as nats_bench defines them."""
        if self._verbose:
            self._say(f"Call the get_more_info function with index={index}, dataset={dataset}, iepoch={iepoch}, "
                      f"hp={hp}, and is_random={is_random}.")
        if type(index) is not int or index not in self.evaluated_indexes:
            index = self._resolve(index)
        plan = self._plans.get((dataset, hp)) or self._plan(dataset, hp)
        if index in self._cache:
            return self._more_info_objects(index, dataset, iepoch, hp, is_random)
        if plan.missing_required:
            raise NATSKeyError(plan.missing_required)
        if is_random is True:
            position = random.choice(plan.positions if plan.uniform else plan.positions_of(index))
        elif is_random is False:
            position = -1
        else:
            position = plan.seed_position(is_random, index)
        try:
            return plan.c.more_info(index, position, iepoch)
        except (KeyError, ValueError, IndexError) as exc:
            raise translate(exc) from None

    def _more_info_objects(self, index: int, dataset: str, iepoch: int | None, hp: Any,
                           is_random: bool | int) -> dict[str, Any]:
        """get_more_info from the (caller-modified) result objects, with nats_bench's semantics."""
        from .reference import more_info

        return more_info(self._results(index, hp), dataset, iepoch, self._hp(hp), is_random)

    def get_cost_info(self, index: Any, dataset: str, hp: Any = _REQUIRED) -> dict[str, Any]:
        """flops (M), params (M), latency (s) and T-<set>@epoch/@total (s) of an arch, averaged over seeds."""
        if self._verbose:
            self._say(f"Call the get_cost_info function with index={index}, dataset={dataset}, and hp={hp}.")
        if type(index) is not int or index not in self.evaluated_indexes:
            index = self._resolve(index)
        if index in self._cache:
            return self._results(index, hp).get_compute_costs(dataset)
        plan = self._plans.get((dataset, hp)) or self._plan(dataset, hp)
        try:
            return plan.c.costs(index, -1)
        except (KeyError, ValueError, IndexError) as exc:
            raise translate(exc) from None

    def get_latency(self, index: Any, dataset: str, hp: Any = _REQUIRED) -> float | None:
        """The latency in seconds (None when the table records none, e.g. NAS-Bench-360's)."""
        if self._verbose:
            self._say(f"Call the get_latency function with index={index}, dataset={dataset}, and hp={hp}.")
        if type(index) is not int or index not in self.evaluated_indexes:
            index = self._resolve(index)
        if index in self._cache:
            return self._results(index, hp).get_compute_costs(dataset)["latency"]
        plan = self._plans.get((dataset, hp)) or self._plan(dataset, hp)
        try:
            return plan.c.latency(index)
        except (KeyError, ValueError, IndexError) as exc:
            raise translate(exc) from None

    def simulate_train_eval(self, arch: Any, dataset: str, iepoch: int | None = None, hp: Any = _REQUIRED,
                            account_time: bool = True) -> tuple[float, float | None, float, float]:
        """Simulate training and evaluating an arch: (valid accuracy, latency, time cost, total simulated time).

        cifar10 reads cifar10-valid, as nats_bench does. nb360 also accepts the table's other tasks
        (NAS-Bench-360's ninapro, darcyflow, ...), which stock nats_bench refuses; where a task records
        no validation split, its valtest split (its only eval split) gives the accuracy and eval time.
        """
        index = self.query_index_by_arch(arch)
        if dataset not in ("cifar10", "cifar100", "ImageNet16-120") and \
                (dataset in STOCK_DATASETS or dataset not in self._ctx.datasets):
            raise InputError(f"Invalid dataset name : {dataset} vs ('cifar10', 'cifar100', 'ImageNet16-120') or a "
                             f"task of this table ({', '.join(self._ctx.datasets)})")
        info = self.get_more_info(index, "cifar10-valid" if dataset == "cifar10" else dataset, iepoch=iepoch, hp=hp,
                                  is_random=True)
        if "valid-accuracy" in info:
            valid_acc, time_cost = info["valid-accuracy"], info["train-all-time"] + info["valid-per-time"]
        else:
            valid_acc = info["valtest-accuracy"]
            last = self.get_more_info(index, dataset, iepoch=None, hp=hp, is_random=True)
            eval_time = last["valid-per-time"] if "valid-per-time" in last else last.get("valtest-per-time")
            time_cost = info["train-all-time"] + (eval_time or 0.0)
        latency = self.get_latency(index, dataset, hp=hp)
        if account_time:
            self._used_time += time_cost
        return valid_acc, latency, time_cost, self._used_time

    # ------------------------------------------------------------------ result objects
    def query_meta_info_by_index(self, arch_index: int, hp: Any = _REQUIRED) -> ArchResults:
        """The ArchResults of one arch at one hp (a copy: changing it changes nothing here)."""
        if self._verbose:
            self._say(f"Call query_meta_info_by_index with arch_index={arch_index}, hp={hp}")
        self._touch(arch_index)
        results = self._results(arch_index, hp)
        return results if results._fast() else _copy(results)

    def query_by_index(self, arch_index: int, dataname: str | None = None, hp: Any = _REQUIRED) -> Any:
        """The ArchResults of an arch (dataname None), or {seed: ResultsCount} of one dataset."""
        if self._verbose:
            self._say(f"Call query_by_index with arch_index={arch_index}, dataname={dataname}, hp={hp}")
        info = self.query_meta_info_by_index(arch_index, hp)
        if dataname is None:
            return info
        if dataname not in info.get_dataset_names():
            raise InputError(f"invalid dataset-name : {dataname} vs. {info.get_dataset_names()}")
        return info.query(dataname)

    def query_info_str_by_arch(self, arch: Any, hp: Any = _REQUIRED) -> str | None:
        """A text summary of an arch at one hp: costs and train/valid/test metrics per dataset."""
        if self._verbose:
            self._say(f"Call query_info_str_by_arch with arch={arch} and hp={hp}")
        index = self.query_index_by_arch(arch)
        if not self.fast_mode and (index < 0 or not self._ctx.recorded[index]):  # nats_bench warns, answers None
            warnings.warn(f"Find this arch-index : {index}, but this arch is not evaluated.", stacklevel=2)
            return None
        self._touch(index)
        results = self._results(index, hp)
        return "\n".join(information_lines(results, f"arch-index={index}", self.is_topology))

    def query_by_arch(self, arch: Any, hp: Any) -> str | None:
        """Same as query_info_str_by_arch (NAS-Bench-201's name)."""
        return self.query_info_str_by_arch(arch, hp)

    def get_net_config(self, index: int, dataset: str) -> dict[str, Any]:
        """The config of the network an arch was trained as on `dataset` (infer.tiny / infer.shape.tiny)."""
        if self._verbose:
            self._say(f"Call the get_net_config function with index={index}, dataset={dataset}.")
        config = self._configs.get((index, dataset))
        if config is not None and index in self.evaluated_indexes and index not in self._cache:
            return dict(config)
        self._touch(index)
        if index in self._cache:
            results = next(iter(self._cache[index].values()))
            return next(iter(results.query(dataset).values())).get_config(None)
        config = self._configs.get((index, dataset))
        if config is None:  # nats_bench reads the first hp's first seed
            hp = self._ctx.arch_hps(index)[0]
            results = self._results(index, hp)
            config = self._configs[index, dataset] = next(iter(results.query(dataset).values())).get_config(None)
        return dict(config)

    def get_net_param(self, index: int, dataset: str, seed: int | None, hp: Any = _REQUIRED) -> Any:
        """Trained weights: not in nb360 tables; raises, naming NATS-Bench's -full archive that has them."""
        raise weights_error(f"get_net_param({index}, {dataset!r}, seed={seed}, hp={hp if hp is not _REQUIRED else None})")

    def clear_params(self, index: int, hp: Any = None) -> None:
        """Drop an arch's trained weights from memory (nb360 holds none; kept for nats_bench's interface)."""
        if self._verbose:
            self._say(f"Call clear_params with index={index} and hp={hp}")
        if index not in self.arch2infos_dict:
            warnings.warn(f"The {index}-th architecture is not in the benchmark data yet, no need to clear params.",
                          stacklevel=2)
            return
        hps = list(self._cache[index]) if index in self._cache else self._ctx.arch_hps(index)
        if hp is not None and str(hp) not in hps:
            raise InputError(f"The {index}-th architecture only has hyper-parameters of {hps} instead of {hp}.")
        if index in self._cache:
            for key, results in self._cache[index].items():
                if hp is None or key == str(hp):
                    results.clear_params()

    def reload(self, archive_root: Any = None, index: int | None = None) -> None:
        """Re-read an arch's records (all archs when index is None) from the table, dropping changed objects."""
        if self._verbose:
            self._say(f"Call reload with archive_root={archive_root} and index={index}")
        root = archive_root if archive_root is not None else self._archive_dir
        if root is None:
            raise InputError("Invalid archive_root : None (as nats_bench: without fast_mode there is no archive_dir "
                             f"to reload from; pass archive_root={self.table.path!r})")
        if os.fspath(root) != self.table.path:
            raise InputError(f"nb360 reads its records from {self.table.path}, not {root}: convert that directory "
                             f"with `nb360 table import {root}` and create an API on its table")
        indexes = np.flatnonzero(self._ctx.recorded).tolist() if index is None else [index]
        for idx in indexes:
            if not 0 <= idx < len(self):
                raise InputError(f"invalid index of {idx}")
            if not self._ctx.recorded[idx]:
                raise InputError(f"invalid data path : arch {idx} is not recorded in {self.table.path}")
            self._cache.pop(idx, None)
            self.evaluated_indexes.add(idx)

    # ------------------------------------------------------------------ whole-table calls
    def find_best(self, dataset: str, metric_on_set: str, flop_max: float | None = None,
                  param_max: float | None = None, hp: Any = _REQUIRED,
                  enforce_all: bool | None = None) -> tuple[int, float | None]:
        """The arch with the highest seed-mean accuracy on a set at the last epoch, within FLOP/param limits."""
        from .reference import find_best

        if self._verbose:
            self._say(f"Call find_best with dataset={dataset}, metric_on_set={metric_on_set}, hp={hp} | with #FLOPs < "
                      f"{flop_max} and #Params < {param_max}")
        dataset, setname = _reference_remap(dataset, metric_on_set)
        if enforce_all is None:
            enforce_all = bool(self.fast_mode)
        if enforce_all and not self.fast_mode:
            raise InputError("enforce_all can only be set when fast_mode=True; if you are using non-fast-mode, please "
                             "set it as False")
        if enforce_all:  # every arch (here: every recorded one), which then counts as evaluated
            candidates = np.flatnonzero(self._ctx.recorded)
            self.evaluated_indexes.update(candidates.tolist())
        else:
            candidates = np.array(sorted(self.evaluated_indexes), dtype=np.int64)
        return find_best(self, candidates, dataset, setname, flop_max, param_max, str(self._hp(hp)))

    def statistics(self, dataset: str, hp: Any) -> dict[int, int]:
        """{number of seeds: number of evaluated archs with that many seeds on `dataset` at `hp`}."""
        if self._verbose:
            self._say(f"Call the statistics function with dataset={dataset} and hp={hp}.")
        if dataset not in STOCK_DATASETS and dataset not in self._ctx.datasets:
            raise InputError(f"{dataset} not in {list(STOCK_DATASETS)} (nor a task of this table)")
        hp = str(hp)
        evaluated = np.array(sorted(self.evaluated_indexes), dtype=np.int64)
        missing = evaluated[~self._ctx.recorded_in_hp(hp)[evaluated]] if evaluated.size else evaluated
        if missing.size:
            raise NATSKeyError(f"arch {int(missing[0])} has no hp {hp!r}")
        counts = np.zeros(evaluated.size, dtype=np.int64)
        if (dataset, hp) in self._ctx._runs:
            for run in self._ctx.runs(dataset, hp):
                counts += self._ctx.recorded_by(run)[evaluated]
        values, occurrences = np.unique(counts, return_counts=True)
        return {int(v): int(n) for v, n in zip(values, occurrences)}

    def show(self, index: int = -1) -> None:
        """Print an arch's results at every hp (index < 0: every evaluated arch)."""
        if index < 0:
            print(self)
            evaluated = sorted(self.evaluated_indexes)
            for i, idx in enumerate(evaluated):
                print("\n" + "-" * 10 + f" The ({i:5d}/{len(evaluated):5d}) {idx:06d}-th architecture! " + "-" * 10)
                print(f"arch : {self.meta_archs[idx]}")
                self._print_arch(idx)
        elif index < len(self):
            if index not in self.evaluated_indexes:
                self._touch(index)
            if index not in self.evaluated_indexes:
                print(f"The {index}-th architecture has not been evaluated or not saved.")
            else:
                self._print_arch(index)
        else:
            print(f"This index ({index}) is out of range (0~{len(self)}).")

    def _print_arch(self, index: int) -> None:
        hp2results = self._cache[index] if index in self._cache else self._fresh_results(index)
        for results in hp2results.values():
            print(epochs_banner(results.get_total_epoch()))
            print("\n".join(information_lines(results, None, self.is_topology)))
        print(END_BANNER)


def _copy(results: ArchResults) -> ArchResults:
    import copy

    return copy.deepcopy(results)


class NATStopology(_NATSAPI):
    """nats_bench.api_topology.NATStopology over an nb360 table of the NB201 / NATS topology space."""

    _space_name = "topology"
    _table_space = "nb201"
    _full_epochs = 200

    def get_unique_str(self, arch: Any) -> str:
        """The isomorphism key of an arch (NAS-Bench-201's to_unique_str(consider_zero=True))."""
        return nb201.unique_str(self.query_index_by_arch(arch))

    @staticmethod
    def str2lists(arch_str: str) -> list[tuple[tuple[str, int], ...]]:
        """Per node, the (op, input node) pairs of an arch string."""
        return [tuple((op, int(src)) for op, _, src in (t.partition("~") for t in node.split("|") if t))
                for node in arch_str.split("+")]

    @staticmethod
    def str2matrix(arch_str: str, search_space: Any = nb201.OPS) -> np.ndarray:
        """NATS-Bench's str2matrix: m[target, source] = op id in `search_space` (float, 4×4)."""
        nodes = arch_str.split("+")
        matrix = np.zeros((len(nodes) + 1, len(nodes) + 1))
        for target, node in enumerate(nodes, start=1):
            for token in (t for t in node.split("|") if t):
                op, _, src = token.partition("~")
                if op not in search_space:
                    raise InputError(f"this op ({op}) is not in {search_space}")
                matrix[target, int(src)] = list(search_space).index(op)
        return matrix


class NATSsize(_NATSAPI):
    """nats_bench.api_size.NATSsize over an nb360 table of the NATS-Bench size space."""

    _space_name = "size"
    _table_space = "sss"
    _full_epochs = 90
