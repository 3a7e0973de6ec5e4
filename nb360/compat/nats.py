"""A NATS-Bench-compatible facade over an nb360 table.

Scripts written for `nats_bench` run unchanged apart from the import:

    from nb360.compat import nats            # instead of: import nats_bench
    api = nats.create("table.h5", "tss", fast_mode=True, verbose=False)
    info = api.get_more_info(idx, "ninapro", hp="200", is_random=False)["valtest-accuracy"]

It returns the same keys with NATS-Bench's semantics (is_random: True = a random seed, False = the
mean over seeds, an int = that seed; iepoch=None = the last epoch; split names per dataset), with
two deliberate differences: `hp` has no silent default (NATS-Bench's default '12' is a known trap:
pass hp='12' or hp='200'), and every task in the table is accepted, including the NAS-Bench-360
'ninapro' and 'darcyflow' tables that stock NATS-Bench rejects in simulate_train_eval.
"""

from __future__ import annotations

import os
import random
from statistics import mean
from typing import Any

import numpy as np

from ..errors import InputError
from ..space import nb201
from ..table import Table

_REQUIRED = object()
_TSS_NAMES = ("tss", "topology")

_COMMENTS = {
    "cifar10-valid": "In this dict, train-loss/accuracy/time is the metric on the train set of CIFAR-10. The "
                     "test-loss/accuracy/time is the performance of the CIFAR-10 test set after training on the train "
                     "set by {:} epochs. The per-time and total-time indicate the per epoch and total time costs, "
                     "respectively.",
    "cifar10": "In this dict, train-loss/accuracy/time is the metric on the train+valid sets of CIFAR-10. The "
               "test-loss/accuracy/time is the performance of the CIFAR-10 test set after training on the "
               "train+valid sets by {:} epochs. The per-time and total-time indicate the per epoch and total time "
               "costs, respectively.",
}


def create(file_path_or_dict: str | os.PathLike, search_space: str = "tss", fast_mode: bool = False,
           verbose: bool = True) -> NATStopology:
    """Open an nb360 table behind the NATS-Bench topology API (fast_mode and verbose are accepted and ignored)."""
    if search_space not in _TSS_NAMES:
        raise InputError(f"nb360 tables hold the topology space only (search_space 'tss'), not {search_space!r}")
    return NATStopology(Table.open(file_path_or_dict))


def _check_hp(hp: Any) -> str:
    if hp is _REQUIRED:
        raise InputError("pass hp= explicitly ('200' for full training, '12' for the low-fidelity runs): nb360's "
                         "NATS facade has no silent default, unlike nats_bench's hp='12'")
    return str(hp)


def _remap(dataset: str, metric_on_set: str) -> tuple[str, str]:
    """NATS-Bench's remap_dataset_set_names."""
    if dataset == "cifar10" and metric_on_set == "valid":
        return "cifar10-valid", "x-valid"
    if dataset == "cifar10" and metric_on_set == "test":
        return "cifar10", "ori-test"
    if dataset in ("cifar100", "ImageNet16-120") and metric_on_set == "valid":
        return dataset, "x-valid"
    if dataset in ("cifar100", "ImageNet16-120") and metric_on_set == "test":
        return dataset, "x-test"
    return dataset, metric_on_set


class NATStopology:
    """The NATS-Bench topology API (`nats_bench.api_topology.NATStopology`) backed by an nb360 Table."""

    def __init__(self, table: Table) -> None:
        if table.space != "nb201":
            raise InputError(f"the NATS facade needs an NB201-space table, not {table.space!r}")
        self.table = table
        self._used_time = 0.0
        self.verbose = False
        self.filename = os.path.basename(table.path)
        self.meta_archs = _MetaArchs()

    # ---------------------------------------------------------------- space
    def __len__(self) -> int:
        return nb201.NUM_ARCHS

    def __repr__(self) -> str:
        return f"NATStopology(nb360 table {self.table.path!r}, {len(self)} architectures)"

    @property
    def search_space_name(self) -> str:
        """'topology', as in NATS-Bench."""
        return "topology"

    @property
    def used_time(self) -> float:
        """Simulated seconds charged by simulate_train_eval."""
        return self._used_time

    def reset_time(self) -> None:
        """Zero the simulated-time account."""
        self._used_time = 0.0

    def arch(self, index: int) -> str:
        """The arch string of an index."""
        return nb201.arch_str(index)

    def query_index_by_arch(self, arch: Any) -> int:
        """The index of an arch (index, string, or object with .tostr()); -1 for a string outside the space."""
        if isinstance(arch, int):
            if 0 <= arch < len(self):
                return arch
            raise ValueError(f"Invalid architecture index {arch} vs [0, {len(self)}].")
        if hasattr(arch, "tostr"):
            arch = arch.tostr()
        if isinstance(arch, str):
            try:
                return nb201.index_of(arch)
            except InputError:
                return -1
        return nb201.index_of(arch)

    def random(self) -> int:
        """A random index (Python's `random`, as NATS-Bench)."""
        return random.randint(0, len(self) - 1)

    @staticmethod
    def str2lists(arch_str: str) -> list[tuple[tuple[str, int], ...]]:
        """NATS-Bench's str2lists: per node, the (op, input) pairs."""
        ops = nb201.ops(arch_str)
        return [((ops[0], 0),), ((ops[1], 0), (ops[2], 1)), ((ops[3], 0), (ops[4], 1), (ops[5], 2))]

    @staticmethod
    def str2matrix(arch_str: str, search_space: tuple[str, ...] = nb201.OPS) -> np.ndarray:
        """NATS-Bench's str2matrix: m[target, source] = op id."""
        if tuple(search_space) != nb201.OPS:
            raise InputError("str2matrix supports the NB201 op order only")
        return np.array(nb201.to_matrix(arch_str), dtype=np.float64)

    # ---------------------------------------------------------------- per-seed access
    def _seeds(self, dataset: str, hp: str) -> list[int]:
        if dataset not in self.table.tasks:
            raise ValueError(f"dataset {dataset!r} is not in this table ({', '.join(self.table.tasks)})")
        seeds = self.table.seeds(hp, dataset)
        if not seeds:
            raise ValueError(f"hp {hp!r} is not recorded for {dataset}; recorded: {self.table.hps(dataset)}")
        return seeds

    def _set_metrics(self, index: int, dataset: str, hp: str, setname: str, iepoch: int | None,
                     seed: int) -> dict[str, Any]:
        """ResultsCount.get_train / get_eval for one seed; raises when the set/epoch is not recorded."""
        epochs = self.table.epochs(hp, dataset)
        e = epochs - 1 if iepoch is None else int(iepoch)
        if not 0 <= e < epochs:
            raise ValueError(f"invalid iepoch={e} < {epochs}")
        name = "x-valid" if setname == "valid" else setname
        q = self.table.query
        loss = q(index, f"{name}-loss", e, seed=seed, hp=hp, task=dataset)
        acc = q(index, f"{name}-accuracy", e, seed=seed, hp=hp, task=dataset)
        times = self.table.query_batch(index, f"{name}-time", np.arange(e + 1), seed=seed, hp=hp, task=dataset,
                                       missing="nan")
        if np.isnan(times).any():
            if name != "train":
                raise ValueError(f"{name}@{e} times not recorded")
            cur, all_time = None, None
        else:
            cur, all_time = float(times[-1]), float(np.sum(times.astype(np.float64)))
        return {"iepoch": e, "loss": loss, "accuracy": acc, "cur_time": cur, "all_time": all_time}

    def get_metrics(self, index: int, dataset: str, setname: str, iepoch: int | None = None, hp: Any = _REQUIRED,
                    is_random: bool | int = False) -> dict[str, Any]:
        """ArchResults.get_metrics: one set's loss/accuracy/times, a random seed, the seed mean, or one seed."""
        hp = _check_hp(hp)
        seeds = self._seeds(dataset, hp)
        if isinstance(is_random, bool) and is_random:
            return self._set_metrics(index, dataset, hp, setname, iepoch, random.choice(seeds))
        if isinstance(is_random, bool):
            per_seed = [self._set_metrics(index, dataset, hp, setname, iepoch, s) for s in seeds]
            return {k: (mean(d[k] for d in per_seed) if per_seed[0][k] is not None else None) for k in per_seed[0]}
        if int(is_random) not in seeds:
            raise ValueError(f"can not find random seed ({is_random}) from {seeds}")
        return self._set_metrics(index, dataset, hp, setname, iepoch, int(is_random))

    # ---------------------------------------------------------------- NATS-Bench queries
    def get_more_info(self, index: Any, dataset: str, iepoch: int | None = None, hp: Any = _REQUIRED,
                      is_random: bool | int = True) -> dict[str, Any]:
        """NATS-Bench's get_more_info: train-*, valid-*, test-*, valtest-* keys as the dataset defines them."""
        hp = _check_hp(hp)
        index = self.query_index_by_arch(index)
        if isinstance(is_random, bool) and is_random:
            is_random = random.choice(self._seeds(dataset, hp))

        def metrics(setname: str) -> dict[str, Any] | None:
            try:
                return self.get_metrics(index, dataset, setname, iepoch=iepoch, hp=hp, is_random=is_random)
            except (ValueError, LookupError, InputError):
                return None

        train = self.get_metrics(index, dataset, "train", iepoch=iepoch, hp=hp, is_random=is_random)
        total = train["iepoch"] + 1
        xinfo: dict[str, Any] = {
            "train-loss": train["loss"], "train-accuracy": train["accuracy"],
            "train-per-time": train["all_time"] / total if train["all_time"] is not None else None,
            "train-all-time": train["all_time"],
        }
        if dataset in _COMMENTS:
            xinfo["comment"] = _COMMENTS[dataset].format(hp)
        if dataset == "cifar10-valid":
            valid, test, valtest = metrics("x-valid"), metrics("ori-test"), None
        else:
            test = metrics("ori-test" if dataset == "cifar10" else "x-test")
            valid = metrics("x-valid")
            valtest = metrics("ori-test") if dataset != "cifar10" else None
        for prefix, info in (("valid", valid), ("test", test), ("valtest", valtest)):
            if info is not None:
                xinfo[f"{prefix}-loss"] = info["loss"]
                xinfo[f"{prefix}-accuracy"] = info["accuracy"]
                xinfo[f"{prefix}-per-time"] = info["all_time"] / total if info["all_time"] is not None else None
                xinfo[f"{prefix}-all-time"] = info["all_time"]
        return xinfo

    def get_cost_info(self, index: Any, dataset: str, hp: Any = _REQUIRED) -> dict[str, Any]:
        """NATS-Bench's get_cost_info: flops, params, latency and T-<set>@epoch / @total (seed means)."""
        hp = _check_hp(hp)
        index = self.query_index_by_arch(index)
        seeds = self._seeds(dataset, hp)
        t = self.table
        info: dict[str, Any] = {}
        for key, name in (("flops", "flops"), ("params", "params")):
            info[key] = t.scalar(index, name, hp=hp, task=dataset)
        try:
            info["latency"] = t.scalar(index, "latency", hp=hp, task=dataset)
        except (LookupError, InputError):
            info["latency"] = None
        epochs = t.epochs(hp, dataset)
        splits = ["train"] + [m[: -len("-time")] for m in t.metrics(hp, dataset)
                              if m.endswith("-time") and m != "train-time"]
        for split in splits:
            per_seed = []
            for seed in seeds:
                times = t.query_batch(index, f"{split}-time", np.arange(epochs), seed=seed, hp=hp, task=dataset,
                                      missing="nan").astype(np.float64)
                per_seed.append(None if np.isnan(times).any() else (float(times.mean()), float(times.sum())))
            ok = all(p is not None for p in per_seed)
            info[f"T-{split}@epoch"] = mean(p[0] for p in per_seed) if ok else None
            info[f"T-{split}@total"] = mean(p[1] for p in per_seed) if ok else None
        return info

    def get_latency(self, index: Any, dataset: str, hp: Any = _REQUIRED) -> float | None:
        """The recorded latency in seconds (None for tables without latency, e.g. NAS-Bench-360's)."""
        return self.get_cost_info(index, dataset, hp=hp)["latency"]

    def simulate_train_eval(self, arch: Any, dataset: str, iepoch: int | None = None, hp: Any = _REQUIRED,
                            account_time: bool = True) -> tuple[float, float | None, float, float]:
        """NATS-Bench's simulate_train_eval: (valid accuracy, latency, time cost, total used time).

        cifar10 reads cifar10-valid, as NATS-Bench does; tasks without a validation split (ninapro,
        darcyflow, ...) use valtest (their single eval split) for both the accuracy and its time.
        """
        hp = _check_hp(hp)
        index = self.query_index_by_arch(arch)
        source = "cifar10-valid" if dataset == "cifar10" else dataset
        info = self.get_more_info(index, source, iepoch=iepoch, hp=hp, is_random=True)
        if "valid-accuracy" in info:
            valid_acc, time_cost = info["valid-accuracy"], info["train-all-time"] + info["valid-per-time"]
        else:
            valid_acc = info["valtest-accuracy"]
            last = self.get_more_info(index, source, iepoch=None, hp=hp, is_random=True)
            eval_time = last.get("valid-per-time", info.get("valtest-per-time"))
            time_cost = info["train-all-time"] + (eval_time or 0.0)
        latency = self.get_latency(index, source, hp=hp)
        if account_time:
            self._used_time += time_cost
        return valid_acc, latency, time_cost, self._used_time

    def find_best(self, dataset: str, metric_on_set: str, flop_max: float | None = None,
                  param_max: float | None = None, hp: Any = _REQUIRED,
                  enforce_all: bool | None = None) -> tuple[int, float]:
        """NATS-Bench's find_best over all recorded archs: the highest seed-mean accuracy within the limits."""
        hp = _check_hp(hp)
        dataset, setname = _remap(dataset, metric_on_set)
        index, value = self.table.best(f"{setname}-accuracy", -1, hp=hp, task=dataset, mode="max",
                                       max_params=param_max, max_flops=flop_max)
        return index, value

    def get_net_config(self, index: int, dataset: str) -> dict[str, Any]:
        """NATS-Bench's get_net_config for the tiny network of an arch."""
        run = next(r for r in self.table.runs if r.task == dataset)
        network = run.protocol.get("network", {})
        return {"name": "infer.tiny", "C": network.get("channel"), "N": network.get("num_cells"),
                "arch_str": self.arch(index), "num_classes": network.get("class_num")}


class _MetaArchs:
    """A read-only sequence of the 15,625 arch strings (NATS-Bench's `api.meta_archs`)."""

    def __len__(self) -> int:
        return nb201.NUM_ARCHS

    def __getitem__(self, index: int) -> str:
        return nb201.arch_str(index)
