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
from .errors import NATSKeyError, WeightsUnavailableError, translate


def _mean(values: list[Any]) -> Any:
    return sum(values) / len(values)


def weights_error(what: str) -> WeightsUnavailableError:
    """The error for any request of trained weights."""
    return WeightsUnavailableError(
        f"{what}: nb360 tables hold no trained weights (nor do NATS-Bench's -simple files); the weights are in "
        "NATS-Bench's '-full' archives (e.g. NATS-tss-v1_0-3ffb9-full, NATS-sss-v1_0-50262-full), read with "
        "nats_bench itself: nats_bench.create('<dir>/NATS-tss-v1_0-3ffb9-full', 'tss').get_net_param(...)")


class _RecordSource:
    """Where a ResultsCount's values come from: one (dataset, hp, seed) run of one arch."""

    __slots__ = ("ctx", "plan", "arch", "dataset", "hp", "seed", "position")

    def __init__(self, ctx: Any, arch: int, dataset: str, hp: str, seed: int) -> None:
        self.ctx, self.arch, self.dataset, self.hp, self.seed = ctx, arch, dataset, hp, seed
        self.plan = ctx.plan(dataset, hp)
        self.position = self.plan.seeds.index(seed)

    def curve(self, metric: str) -> dict[int, float] | None:
        if metric not in self.plan.runs[0].metrics:
            return None
        values, present = self.ctx.table.curve(self.arch, metric, seed=self.seed, hp=self.hp, task=self.dataset,
                                               with_mask=True)
        return {int(e): float(values[e]) for e in range(len(values)) if present[e]}

    def evals(self, quantity: str) -> dict[str, float]:
        out = {}
        for name in self.plan.eval_names:
            for epoch, value in (self.curve(f"{name}-{quantity}") or {}).items():
                out[f"{name}@{epoch}"] = value
        return out

    def scalar(self, name: str) -> float | None:
        if name not in self.plan.runs[0].scalars:
            return None
        value = self.ctx.table.scalar_batch(name, [self.arch], seed=self.seed, hp=self.hp, task=self.dataset)[0]
        return None if value != value else float(value)

    def attribute(self, name: str) -> Any:
        """The value nats_bench's ResultsCount holds in attribute `name`."""
        if name in ("train_acc1es", "train_acc5es", "train_losses", "train_times"):
            metric = {"train_acc1es": "train-accuracy", "train_acc5es": "train-accuracy5",
                      "train_losses": "train-loss", "train_times": "train-time"}[name]
            return self.curve(metric)
        if name in ("eval_acc1es", "eval_losses", "eval_times"):
            return self.evals({"eval_acc1es": "accuracy", "eval_losses": "loss", "eval_times": "time"}[name])
        if name == "latency":
            value = self.scalar("latency")
            return None if value is None else [value]
        simple = {"name": lambda: self.dataset, "net_state_dict": lambda: None, "params": lambda: self.scalar("params"),
                  "flop": lambda: self.scalar("flops"), "seed": lambda: f"{self.seed:04d}",
                  "epochs": lambda: self.plan.epochs, "eval_names": lambda: list(self.plan.eval_names),
                  "arch_config": lambda: self.ctx.arch_config(self.arch, self.dataset, self.hp)}
        return simple[name]()


_RC_FIELDS = ("name", "train_acc1es", "train_acc5es", "train_losses", "train_times", "arch_config", "params", "flop",
              "seed", "epochs", "latency", "eval_names", "eval_acc1es", "eval_times", "eval_losses", "net_state_dict")


class ResultsCount:
    """One trial (one seed) of one arch on one dataset: nats_bench.api_utils.ResultsCount's interface."""

    def __init__(self, name: Any, state_dict: Any, train_accs: Any, train_losses: Any, params: Any, flop: Any,
                 arch_config: Any, seed: Any, epochs: Any, latency: Any, *, source: _RecordSource | None = None) -> None:
        object.__setattr__(self, "_source", source)
        if source is not None:
            return  # every field is read from the table when first asked for
        self.name = name
        self.net_state_dict = state_dict
        self.train_acc1es = copy.deepcopy(train_accs)
        self.train_acc5es = None
        self.train_losses = copy.deepcopy(train_losses)
        self.train_times = None
        self.arch_config = copy.deepcopy(arch_config)
        self.params, self.flop, self.seed, self.epochs, self.latency = params, flop, seed, epochs, latency
        self.reset_eval()

    def __getattr__(self, name: str) -> Any:  # only called for fields not yet read from the table
        source = self.__dict__.get("_source")
        if source is None or name not in _RC_FIELDS:
            raise AttributeError(f"'ResultsCount' object has no attribute {name!r}")
        value = source.attribute(name)
        self.__dict__[name] = value
        return value

    def _fast(self) -> bool:
        """True while nothing has been read into Python state: queries go straight to the table."""
        return len(self.__dict__) == 1 and self._source is not None

    def __deepcopy__(self, memo: dict[int, Any]) -> ResultsCount:
        clone = ResultsCount.__new__(ResultsCount)
        for key, value in self.__dict__.items():
            clone.__dict__[key] = value if key == "_source" else copy.deepcopy(value, memo)
        return clone

    # ------------------------------------------------------------------ updates (as nats_bench)
    def update_train_info(self, train_acc1es: Any, train_acc5es: Any, train_losses: Any, train_times: Any) -> None:
        self.train_acc1es, self.train_acc5es = train_acc1es, train_acc5es
        self.train_losses, self.train_times = train_losses, train_times

    def reset_pseudo_train_times(self, estimated_per_epoch_time: float) -> None:
        self.train_times = {i: estimated_per_epoch_time for i in range(self.epochs)}

    def reset_pseudo_eval_times(self, eval_name: str, estimated_per_epoch_time: float) -> None:
        if eval_name not in self.eval_names:
            raise InputError(f"invalid eval name : {eval_name}")
        for i in range(self.epochs):
            self.eval_times[f"{eval_name}@{i}"] = estimated_per_epoch_time

    def reset_eval(self) -> None:
        self.eval_names, self.eval_acc1es, self.eval_times, self.eval_losses = [], {}, {}, {}

    def update_latency(self, latency: Any) -> None:
        self.latency = copy.deepcopy(latency)

    def update_eval(self, accs: dict[str, Any], losses: dict[str, Any], times: dict[str, Any]) -> None:
        for data_name in {key.split("@")[0] for key in accs}:
            if data_name in self.eval_names:
                raise InputError(f"{data_name} has already been added into eval-names")
            self.eval_names.append(data_name)
            for i in range(self.epochs):
                key = f"{data_name}@{i}"
                self.eval_acc1es[key], self.eval_losses[key], self.eval_times[key] = accs[key], losses[key], times[key]

    def update_OLD_eval(self, name: str, accs: dict[int, Any], losses: dict[int, Any]) -> None:  # noqa: N802
        if name in self.eval_names:
            raise InputError(f"{name} has already added")
        self.eval_names.append(name)
        for i in range(self.epochs):
            if i in accs:
                self.eval_acc1es[f"{name}@{i}"], self.eval_losses[f"{name}@{i}"] = accs[i], losses[i]

    # ------------------------------------------------------------------ queries
    def get_latency(self) -> float:
        """Latency in seconds, -1 when not recorded."""
        if self._fast():
            latency = self._source.plan.c.costs(self._source.arch, self._source.position)["latency"]
            return -1.0 if latency is None else latency
        return -1.0 if self.latency is None else sum(self.latency) / len(self.latency)

    def get_total_epoch(self) -> int:
        return copy.deepcopy(self.epochs)

    def get_times(self) -> dict[str, float | None]:
        """T-train@epoch/@total and T-<eval>@epoch/@total: mean and sum of the per-epoch times."""
        if self._fast():
            costs = self._source.plan.c.costs(self._source.arch, self._source.position)
            return {k: v for k, v in costs.items() if k.startswith("T-")}
        if isinstance(self.train_times, dict):
            times = list(self.train_times.values())
            info = {"T-train@epoch": _mean(times), "T-train@total": sum(times)}
        else:
            info = {"T-train@epoch": None, "T-train@total": None}
        for name in self.eval_names:
            try:
                times = [self.eval_times[f"{name}@{i}"] for i in range(self.epochs)]
                info[f"T-{name}@epoch"], info[f"T-{name}@total"] = _mean(times), sum(times)
            except Exception:  # an epoch without a time: as nats_bench, None
                info[f"T-{name}@epoch"] = info[f"T-{name}@total"] = None
        return info

    def get_eval_set(self) -> list[str]:
        return self.eval_names

    def judge_valid(self, iepoch: int) -> None:
        if iepoch < 0 or iepoch >= self.epochs:
            raise InputError(f"invalid iepoch={iepoch} < {self.epochs}")

    def get_train(self, iepoch: int | None = None) -> dict[str, Any]:
        """Train loss/accuracy after epoch `iepoch` (None: the last) and the time up to it."""
        if self._fast():
            return self._query(0, iepoch)
        if iepoch is None:
            iepoch = self.epochs - 1
        self.judge_valid(iepoch)
        if self.train_times is not None:
            cur, total = self.train_times[iepoch], sum(self.train_times[i] for i in range(iepoch + 1))
        else:
            cur = total = None
        return {"iepoch": iepoch, "loss": self.train_losses[iepoch], "accuracy": self.train_acc1es[iepoch],
                "cur_time": cur, "all_time": total}

    def get_eval(self, name: str, iepoch: int | None = None) -> dict[str, Any]:
        """Loss/accuracy on eval set `name` ('valid' = 'x-valid') after epoch `iepoch` and its time."""
        if self._fast():
            return self._query(self._source.plan.set_of(name), iepoch)
        if iepoch is None:
            iepoch = self.epochs - 1
        self.judge_valid(iepoch)
        name = "x-valid" if name == "valid" else name
        if isinstance(self.eval_times, dict) and len(self.eval_times):
            key = f"{name}@{iepoch}"
            if key not in self.eval_times:
                raise InputError(f"{key} not in {self.eval_times.keys()}")
            cur = self.eval_times[key]
            total = sum(self.eval_times[f"{name}@{i}"] for i in range(iepoch + 1))
        else:
            cur = total = None
        return {"iepoch": iepoch, "loss": self.eval_losses[f"{name}@{iepoch}"],
                "accuracy": self.eval_acc1es[f"{name}@{iepoch}"], "cur_time": cur, "all_time": total}

    def _query(self, set_index: int, iepoch: int | None) -> dict[str, Any]:
        s = self._source
        try:
            return s.plan.c.metrics(s.arch, set_index, s.position, iepoch)
        except (KeyError, ValueError, IndexError) as exc:
            raise translate(exc) from None

    def get_net_param(self, clone: bool = False) -> Any:
        raise weights_error("ResultsCount.get_net_param")

    def get_config(self, str2structure: Any) -> dict[str, Any]:
        """The network config: infer.tiny (topology) or infer.shape.tiny (size)."""
        config = self.arch_config
        if config.get("name") == "infer.shape.tiny":
            genotype = config["genotype"] if str2structure is None else str2structure(config["genotype"])
            return {"name": "infer.shape.tiny", "channels": config["channels"], "genotype": genotype,
                    "num_classes": config["class_num"]}
        out = {"name": "infer.tiny", "C": config["channel"], "N": config["num_cells"]}
        if str2structure is None:
            out["arch_str"] = config["arch_str"]
        else:
            out["genotype"] = str2structure(config["arch_str"])
        out["num_classes"] = config["class_num"]
        return out

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Every field as a plain dict (the released files' record)."""
        return {name: getattr(self, name) for name in _RC_FIELDS} if self._source is not None else \
            {k: v for k, v in self.__dict__.items() if k != "_source"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)

    @staticmethod
    def create_from_state_dict(state_dict: dict[str, Any]) -> ResultsCount:
        x = ResultsCount(None, None, None, None, None, None, None, None, None, None)
        x.load_state_dict(state_dict)
        return x

    def __repr__(self) -> str:
        return (f"ResultsCount({self.name}, arch={self.arch_config['arch_str']}, FLOP={self.flop:.2f}M, "
                f"Param={self.params:.3f}MB, seed={self.seed}, {len(self.eval_names)} eval-sets: "
                f"[{', '.join(self.eval_names)}])")


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
    def get_compute_costs(self, dataset: str) -> dict[str, Any]:
        """flops, params, latency and T-<set>@epoch/@total, averaged over the seeds."""
        seeds = self._seeds(dataset)
        if self._fast():
            try:
                return self._source.ctx.plan(dataset, self._source.hp).c.costs(self.arch_index, -1)
            except (KeyError, ValueError, IndexError) as exc:
                raise translate(exc) from None
        results = [self.all_results[(dataset, s)] for s in seeds]

        def fix_legacy_issue(raw: list[Any]) -> list[Any]:  # seeds disagreeing in the 5th decimal: seed 888's
            return [raw[seeds.index(888)]] if len(raw) > 1 and len({f"{x:.5f}" for x in raw}) > 1 else raw

        latencies = [x for x in (r.get_latency() for r in results) if x > 0]
        info = {"flops": _mean(fix_legacy_issue([r.flop for r in results])),
                "params": _mean(fix_legacy_issue([r.params for r in results])),
                "latency": _mean(latencies) if latencies else None}
        per_key: dict[str, list[Any]] = {}
        for r in results:
            for key, value in r.get_times().items():
                per_key.setdefault(key, []).append(value)
        for key, values in per_key.items():
            info[key] = _mean(values) if values and values[0] is not None else None
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
            return {k: (_mean([i[k] for i in infos]) if infos[0][k] is not None else None) for k in infos[0]}
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
