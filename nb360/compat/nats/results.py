"""nats_bench's result objects, `ArchResults` (one arch, one hp) and `ResultsCount` (one seed), over a table.

The objects the facade returns read the table lazily: a query such as `get_metrics`, `get_train` or
`get_compute_costs` on an untouched object is one compiled lookup, and an attribute such as
`train_acc1es` or `all_results` is built from the table the first time it is read and then kept, so
code that reads, mutates (`reset_latency`, `update_eval`, ...) or pickles the objects sees plain
Python state, exactly as with nats_bench. From then on that object answers from its own state with
nats_bench's semantics (written here, not copied). Objects made without a table (`ArchResults(i, s)`,
`create_from_state_dict`) are plain in-memory objects, as in nats_bench.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from ...errors import InputError
from .errors import NATSKeyError, translate
from .records import ResultsCount, _RecordSource, mean, weights_error


class _ArchSource:
    """Where an ArchResults' records come from: one arch at one hp."""

    __slots__ = ("ctx", "arch", "hp", "datasets")

    def __init__(self, ctx: Any, arch: int, hp: str) -> None:
        self.ctx, self.arch, self.hp = ctx, arch, hp
        self.datasets = ctx.arch_datasets(arch, hp)  # {dataset: seeds}

    def all_results(self) -> dict[tuple[str, int], ResultsCount]:
        return {(d, s): ResultsCount(*(None,) * 10, source=_RecordSource(self.ctx, self.arch, d, self.hp, s))
                for d, seeds in self.datasets.items() for s in seeds}


class ArchResults:
    """One arch trained with one hp on every dataset: nats_bench.api_utils.ArchResults' interface."""

    def __init__(self, arch_index: int, arch_str: Any, *, source: _ArchSource | None = None) -> None:
        object.__setattr__(self, "_source", source)
        self.arch_index = int(arch_index)
        self.arch_str = copy.deepcopy(arch_str)
        if source is None:
            self.all_results: dict[tuple[str, int], ResultsCount] = {}
            self.dataset_seed: dict[str, list[int]] = {}
        self.clear_net_done = source is not None  # the released files are saved with their weights cleared

    def __getattr__(self, name: str) -> Any:
        source = self.__dict__.get("_source")
        if source is None or name not in ("all_results", "dataset_seed"):
            raise AttributeError(f"'ArchResults' object has no attribute {name!r}")
        value = source.all_results() if name == "all_results" else copy.deepcopy(source.datasets)
        self.__dict__[name] = value
        return value

    def _fast(self) -> bool:
        d = self.__dict__
        return d["_source"] is not None and "all_results" not in d and "dataset_seed" not in d

    def __deepcopy__(self, memo: dict[int, Any]) -> ArchResults:
        clone = ArchResults.__new__(ArchResults)
        for key, value in self.__dict__.items():
            clone.__dict__[key] = value if key == "_source" else copy.deepcopy(value, memo)
        return clone

    def _seeds(self, dataset: str) -> list[int]:
        seeds = self._source.datasets.get(dataset) if self._fast() else self.dataset_seed.get(dataset)
        if seeds is None:
            raise NATSKeyError(f"dataset {dataset!r} is not recorded for arch {self.arch_index}; recorded: "
                               f"{', '.join(self.get_dataset_names())}")
        return seeds

    # ------------------------------------------------------------------ queries
    def get_compute_costs(self, dataset: str, _times: bool = True) -> dict[str, Any]:
        """flops, params, latency and T-<set>@epoch/@total, averaged over the seeds."""
        seeds = self._seeds(dataset)
        if self._fast():
            try:  # _times=False (show's summary): only flops, params and latency
                return self._source.ctx.plan(dataset, self._source.hp).c.costs(self.arch_index, -1, _times)
            except (KeyError, ValueError, IndexError) as exc:
                raise translate(exc) from None
        results = [self.all_results[(dataset, s)] for s in seeds]

        def fix_legacy_issue(raw: list[Any]) -> list[Any]:  # seeds disagreeing in the 5th decimal: seed 888's
            return [raw[seeds.index(888)]] if len(raw) > 1 and len({f"{x:.5f}" for x in raw}) > 1 else raw

        latencies = [x for x in (r.get_latency() for r in results) if x > 0]
        info = {"flops": mean(fix_legacy_issue([r.flop for r in results])),
                "params": mean(fix_legacy_issue([r.params for r in results])),
                "latency": mean(latencies) if latencies else None}
        per_key: dict[str, list[Any]] = {}
        for r in results:
            for key, value in r.get_times().items():
                per_key.setdefault(key, []).append(value)
        for key, values in per_key.items():
            info[key] = mean(values) if values and values[0] is not None else None
        return info

    def get_metrics(self, dataset: str, setname: str, iepoch: int | None = None,
                    is_random: bool | int = False) -> dict[str, Any]:
        """loss/accuracy/times of one set: a random seed (True), the seed mean (False) or one seed (an int)."""
        seeds = self._seeds(dataset)
        if self._fast():
            plan = self._source.ctx.plan(dataset, self._source.hp)
            if isinstance(is_random, bool):
                position = plan.seeds.index(seeds[random.randint(0, len(seeds) - 1)]) if is_random else -1
            elif isinstance(is_random, int) and is_random in seeds:
                position = plan.seeds.index(is_random)
            else:  # nats_bench reads every seed's values before it looks at is_random: their errors come first
                position = -1
            try:
                info = plan.c.metrics(self.arch_index, plan.set_of(setname), position, iepoch)
            except (KeyError, ValueError, IndexError) as exc:
                raise translate(exc) from None
            if position == -1 and not isinstance(is_random, bool):
                if isinstance(is_random, int):
                    raise InputError(f"can not find random seed ({is_random}) from {seeds}")
                raise InputError(f"invalid value for is_random: {is_random}")
            return info
        infos = [self.all_results[(dataset, s)].get_train(iepoch) if setname == "train"
                 else self.all_results[(dataset, s)].get_eval(setname, iepoch) for s in seeds]
        if isinstance(is_random, bool) and is_random:
            return dict(infos[random.randint(0, len(infos) - 1)])
        if isinstance(is_random, bool):
            return {k: (mean([i[k] for i in infos]) if infos[0][k] is not None else None) for k in infos[0]}
        if isinstance(is_random, int):
            if is_random not in seeds:
                raise InputError(f"can not find random seed ({is_random}) from {seeds}")
            return dict(infos[seeds.index(is_random)])
        raise InputError(f"invalid value for is_random: {is_random}")

    def get_dataset_names(self) -> list[str]:
        return list(self._source.datasets) if self._fast() else list(self.dataset_seed)

    def get_dataset_seeds(self, dataset: str) -> list[int]:
        return list(self._seeds(dataset))

    def get_net_param(self, dataset: str, seed: int | None = None) -> Any:
        raise weights_error("ArchResults.get_net_param")

    def get_latency(self, dataset: str) -> float:
        """The mean latency over seeds; ValueError when a seed has none (as nats_bench)."""
        latencies = []
        for seed in self._seeds(dataset):
            latency = self.query(dataset, seed).get_latency()
            if not isinstance(latency, float) or latency <= 0:
                raise InputError(f"invalid latency of {dataset} with seed={seed} : {latency}")
            latencies.append(latency)
        return sum(latencies) / len(latencies)

    def get_total_epoch(self, dataset: str | None = None) -> int:
        if dataset is not None and not isinstance(dataset, str):
            raise InputError(f"invalid dataset={dataset}")
        names = self.get_dataset_names() if dataset is None else [dataset]
        epochs = [self.query(d, s).get_total_epoch() for d in names for s in self._seeds(d)]
        if len(set(epochs)) > 1:
            raise InputError(f"Each trial mush have the same number of training epochs : {epochs}")
        return epochs[-1]

    def query(self, dataset: str, seed: int | None = None) -> Any:
        """{seed: ResultsCount} of a dataset, or the one of `seed`."""
        if seed is None:
            seeds = self._seeds(dataset)
            if self._fast():  # fresh per-seed objects without building the whole all_results
                return {s: ResultsCount(*(None,) * 10, source=_RecordSource(self._source.ctx, self.arch_index,
                                                                           dataset, self._source.hp, s))
                        for s in seeds}
            return {s: self.all_results[(dataset, s)] for s in seeds}
        if self._fast() and seed in self._source.datasets.get(dataset, ()):
            return ResultsCount(*(None,) * 10, source=_RecordSource(self._source.ctx, self.arch_index, dataset,
                                                                   self._source.hp, seed))
        try:
            return self.all_results[(dataset, seed)]
        except KeyError:
            raise NATSKeyError(f"({dataset!r}, {seed}) is not recorded for arch {self.arch_index}") from None

    def arch_idx_str(self) -> str:
        return f"{self.arch_index:06d}"

    # ------------------------------------------------------------------ updates (as nats_bench)
    def update(self, dataset_name: str, seed: int, result: ResultsCount) -> None:
        seeds = self.dataset_seed.setdefault(dataset_name, [])
        if seed in seeds:
            raise InputError(f"{self.arch_index}-th arch alreadly has this seed ({seed}) on {dataset_name}")
        seeds.append(seed)
        seeds.sort()
        self.all_results[(dataset_name, seed)] = result
        self.clear_net_done = False

    def reset_latency(self, dataset: str, seed: int | None, latency: float) -> None:
        for s in (self.dataset_seed[dataset] if seed is None else [seed]):
            self.all_results[(dataset, s)].update_latency([latency])

    def reset_pseudo_train_times(self, dataset: str, seed: int | None, estimated_per_epoch_time: float) -> None:
        for s in (self.dataset_seed[dataset] if seed is None else [seed]):
            self.all_results[(dataset, s)].reset_pseudo_train_times(estimated_per_epoch_time)

    def reset_pseudo_eval_times(self, dataset: str, seed: int | None, eval_name: str,
                                estimated_per_epoch_time: float) -> None:
        for s in (self.dataset_seed[dataset] if seed is None else [seed]):
            self.all_results[(dataset, s)].reset_pseudo_eval_times(eval_name, estimated_per_epoch_time)

    def clear_params(self) -> None:
        """Drop trained weights (the table holds none; kept for nats_bench's interface)."""
        for result in self.all_results.values():
            result.net_state_dict = None
        self.clear_net_done = True

    def debug_test(self) -> None:
        """Print every dataset's latency and every seed's times (nats_bench's debugging aid)."""
        for dataset in ["cifar10-valid", "cifar10", "cifar100", "ImageNet16-120"]:
            print(f"---->>>> {dataset}")
            print(f"The latency on {dataset} is {self.get_latency(dataset)} s")
            for seed in self.dataset_seed[dataset]:
                result = self.all_results[(dataset, seed)]
                print(f"  ==>> result = {result}")
                print(f"  ==>> cost = {result.get_times()}")

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The released files' ArchResults state (ResultsCount states inside)."""
        return {"arch_index": self.arch_index, "arch_str": self.arch_str,
                "all_results": {k: v.state_dict() for k, v in self.all_results.items()},
                "dataset_seed": self.dataset_seed, "clear_net_done": self.clear_net_done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        new = dict(state_dict)
        if "all_results" in new:
            if not isinstance(new["all_results"], dict):
                raise InputError(f"invalid type of value for all_results : {type(new['all_results'])}")
            new["all_results"] = {k: ResultsCount.create_from_state_dict(v) for k, v in new["all_results"].items()}
        self.__dict__.update(new)

    @staticmethod
    def create_from_state_dict(state_dict_or_file: Any) -> ArchResults:
        if not isinstance(state_dict_or_file, dict):
            raise InputError(f"invalid type of state_dict_or_file : {type(state_dict_or_file)} (nb360 builds "
                             "ArchResults from a state dict; read released files with `nb360 table import`)")
        x = ArchResults(-1, -1)
        x.load_state_dict(state_dict_or_file)
        return x

    def __repr__(self) -> str:
        runs = sum(len(s) for s in self._source.datasets.values()) if self._fast() else len(self.all_results)
        return (f"ArchResults(arch-index={self.arch_index}, arch={self.arch_str}, {runs} runs, "
                f"clear={self.clear_net_done})")
