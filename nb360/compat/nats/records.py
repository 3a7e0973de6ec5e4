"""nats_bench's per-seed result object, `ResultsCount`, over a table (see results.py for how the objects read it)."""

from __future__ import annotations

import copy
from typing import Any

from ...errors import InputError
from .errors import WeightsUnavailableError, translate


def mean(values: list[Any]) -> Any:
    """nats_bench's mean: sum / len, in order."""
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
            info = {"T-train@epoch": mean(times), "T-train@total": sum(times)}
        else:
            info = {"T-train@epoch": None, "T-train@total": None}
        for name in self.eval_names:
            try:
                times = [self.eval_times[f"{name}@{i}"] for i in range(self.epochs)]
                info[f"T-{name}@epoch"], info[f"T-{name}@total"] = mean(times), sum(times)
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
