"""`NATStopology` and `NATSsize`: nats_bench 1.8's API classes answered from an nb360 table.

Every public member of nats_bench's classes exists with its semantics (the differential test in
tests/test_nats_conformance.py enumerates them from the installed nats_bench). The per-query calls
(get_more_info, get_cost_info, simulate_train_eval, get_latency, query_by_index, ...) go straight
to compiled lookups (context.Plan); the Python layer only resolves arguments, draws from `random`
exactly as nats_bench does (so searches give nats_bench's trajectories), and keeps nats_bench's
bookkeeping (`evaluated_indexes`, `arch2infos_dict`, `used_time`).
"""

from __future__ import annotations

import copy
import os
import random
import warnings
from typing import Any

import numpy as np

from ...errors import InputError
from ...space import nb201
from .base import REQUIRED, APIBase
from .context import STOCK_DATASETS
from .errors import NATSKeyError, translate
from .printing import END_BANNER, epochs_banner, information_lines
from .records import weights_error
from .results import ArchResults


def _reference_remap(dataset: str, metric_on_set: str) -> tuple[str, str]:
    """nats_bench's remap_dataset_set_names (find_best's dataset / set naming)."""
    if dataset == "cifar10" and metric_on_set == "valid":
        return "cifar10-valid", "x-valid"
    if dataset == "cifar10" and metric_on_set == "test":
        return "cifar10", "ori-test"
    if dataset in ("cifar100", "ImageNet16-120") and metric_on_set in ("valid", "test"):
        return dataset, "x-valid" if metric_on_set == "valid" else "x-test"
    return dataset, metric_on_set


class _NATSAPI(APIBase):
    """nats_bench's queries over APIBase's state (nats_bench's NASBenchMetaAPI)."""

    # ------------------------------------------------------------------ per-query calls
    def get_more_info(self, index: Any, dataset: str, iepoch: int | None = None, hp: Any = REQUIRED,
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

    def get_cost_info(self, index: Any, dataset: str, hp: Any = REQUIRED) -> dict[str, Any]:
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

    def get_latency(self, index: Any, dataset: str, hp: Any = REQUIRED) -> float | None:
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

    def simulate_train_eval(self, arch: Any, dataset: str, iepoch: int | None = None, hp: Any = REQUIRED,
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
    def query_meta_info_by_index(self, arch_index: int, hp: Any = REQUIRED) -> ArchResults:
        """The ArchResults of one arch at one hp (a copy: changing it changes nothing here)."""
        if self._verbose:
            self._say(f"Call query_meta_info_by_index with arch_index={arch_index}, hp={hp}")
        self._touch(arch_index)
        results = self._results(arch_index, hp)
        return results if results._fast() else copy.deepcopy(results)

    def query_by_index(self, arch_index: int, dataname: str | None = None, hp: Any = REQUIRED) -> Any:
        """The ArchResults of an arch (dataname None), or {seed: ResultsCount} of one dataset."""
        if self._verbose:
            self._say(f"Call query_by_index with arch_index={arch_index}, dataname={dataname}, hp={hp}")
        info = self.query_meta_info_by_index(arch_index, hp)
        if dataname is None:
            return info
        if dataname not in info.get_dataset_names():
            raise InputError(f"invalid dataset-name : {dataname} vs. {info.get_dataset_names()}")
        return info.query(dataname)

    def query_info_str_by_arch(self, arch: Any, hp: Any = REQUIRED) -> str | None:
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

    def get_net_param(self, index: int, dataset: str, seed: int | None, hp: Any = REQUIRED) -> Any:
        """Trained weights: not in nb360 tables; raises, naming NATS-Bench's -full archive that has them."""
        raise weights_error(f"get_net_param({index}, {dataset!r}, seed={seed}, hp={hp if hp is not REQUIRED else None})")

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
                  param_max: float | None = None, hp: Any = REQUIRED,
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
