"""Builds NATS-Bench topology tables in the released layouts for tests and benchmarks.

Records are SYNTHETIC (seeded random values) unless copied from the real fixture files in
tests/fixtures/nats-tss-v1_0-3ffb9-simple/ and tests/fixtures/NATS-sss-v1_0-50262-simple/. They follow the exact structure of the released
records (ArchResults / ResultsCount state dicts, see nb360's reference nb201-table.md §5).
"""

from __future__ import annotations

import bz2
import collections
import pickle
from pathlib import Path

import numpy as np

FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "nats-tss-v1_0-3ffb9-simple"
SSS_FIXTURE_DIR = Path(__file__).resolve().parent / "fixtures" / "NATS-sss-v1_0-50262-simple"
FIXTURE_ARCHS = (0, 11, 284)  # the archs both fixture directories hold


def load_fixture(name: str, directory: Path = FIXTURE_DIR):
    """A real fixture file, unpickled (trusted: it ships with the tests)."""
    return pickle.loads(bz2.decompress((directory / name).read_bytes()))


def meta_archs(directory: Path = FIXTURE_DIR) -> list[str]:
    """The arch strings of a real NATS-Bench meta file (15,625 topology, 32,768 size)."""
    return load_fixture("meta.pickle.pbz2", directory)["meta_archs"]


def synthetic_results_count(rng: np.random.Generator, dataset: str, seed: int, epochs: int, arch_str: str,
                            class_num: int, eval_names=("ori-test",)) -> dict:
    """A SYNTHETIC ResultsCount state in the NAS-Bench-360 layout (latency None, pseudo times)."""
    base = float(rng.uniform(20, 90))
    curve = np.clip(base * (1 - np.exp(-np.arange(1, epochs + 1) / max(epochs / 5, 1))) + rng.normal(0, 1, epochs),
                    0, 100)
    train_time = float(rng.uniform(1, 10))
    eval_time = float(rng.uniform(0.1, 1))
    state = {
        "name": dataset,
        "train_acc1es": {e: float(min(100.0, curve[e] + 5)) for e in range(epochs)},
        "train_acc5es": None,
        "train_losses": {e: float(3.0 / (1 + e)) for e in range(epochs)},
        "train_times": collections.OrderedDict((e, train_time) for e in range(epochs)),
        "arch_config": {"channel": 16, "num_cells": 5, "arch_str": arch_str, "class_num": class_num},
        "params": np.float64(rng.uniform(0.07, 1.5)),
        "flop": float(rng.uniform(7, 220)),
        "seed": f"{seed:04d}",
        "epochs": epochs,
        "latency": None,
        "eval_names": list(eval_names),
        "eval_acc1es": {}, "eval_times": {}, "eval_losses": {},
        "net_state_dict": None,
    }
    for name in eval_names:
        for e in range(epochs):
            state["eval_acc1es"][f"{name}@{e}"] = float(curve[e])
            state["eval_losses"][f"{name}@{e}"] = float(4.0 / (1 + e))
            state["eval_times"][f"{name}@{e}"] = eval_time
    return state


def synthetic_arch_results(index: int, arch_str: str, rng: np.random.Generator, dataset: str = "ninapro",
                           seed: int = 777, epochs: int = 200, hp: str = "200", class_num: int = 18) -> dict:
    """A SYNTHETIC {hp: ArchResults state} for one arch, as in the released NAS-Bench-360 files."""
    rc = synthetic_results_count(rng, dataset, seed, epochs, arch_str, class_num)
    return {hp: {"arch_index": index, "arch_str": arch_str, "all_results": {(dataset, seed): rc},
                 "dataset_seed": {dataset: [seed]}, "clear_net_done": True}}


def write_single_file(path: Path, arch2infos: dict, archs: list[str] | None = None, compress: bool = True) -> Path:
    """Write the single-file layout: {meta_archs, total_archs, arch2infos, evaluated_indexes}, bz2 pickled."""
    archs = archs or meta_archs()
    data = {"meta_archs": archs, "total_archs": len(archs), "arch2infos": arch2infos,
            "evaluated_indexes": set(arch2infos)}
    raw = pickle.dumps(data, protocol=4)
    path.write_bytes(bz2.compress(raw, compresslevel=1) if compress else raw)
    return path


def synthetic_nb360_file(path: Path, num_archs: int | None = None, epochs: int = 200, dataset: str = "ninapro",
                         seed: int = 777, rng_seed: int = 0, compress: bool = True) -> Path:
    """A SYNTHETIC table in the released NAS-Bench-360 single-file layout (all 15,625 archs by default)."""
    archs = meta_archs()
    rng = np.random.default_rng(rng_seed)
    n = len(archs) if num_archs is None else num_archs
    arch2infos = {i: synthetic_arch_results(i, archs[i], rng, dataset=dataset, seed=seed, epochs=epochs)
                  for i in range(n)}
    return write_single_file(path, arch2infos, archs, compress=compress)


def fixture_single_file(path: Path, directory: Path = FIXTURE_DIR) -> Path:
    """The three real fixture archs of a fixture directory rewritten in the single-file layout."""
    arch2infos = {i: load_fixture(f"{i:06d}.pickle.pbz2", directory) for i in FIXTURE_ARCHS}
    return write_single_file(path, arch2infos, meta_archs(directory))


# ---------------------------------------------------------------------------------------------- full-size, stock layout
class SyntheticNats:
    """A SYNTHETIC full-size NATS-Bench table in the stock layout, held as arrays (seeded values).

    Every arch of the space (15,625 topology / 32,768 size) has the stock records the NATS-algos
    scripts read: the search fidelity ('12': cifar10-valid, seeds 111/777 for tss, 777/888/999 for
    sss, every epoch; cifar10, one seed) and the full one ('200' / '90': cifar10-valid with ori-test at the last epoch
    only, and cifar10, seed 777). Values are float32 numbers, so the nb360 table (float32) and the
    nats_bench records (Python floats) hold exactly the same numbers. `write_nb360` writes the table
    directly from the arrays; `write_nats_dir` writes the -simple directory nats_bench reads, with the
    records of the given archs only (nats_bench's fast mode loads an arch's file when first queried).
    """

    def __init__(self, space: str, rng_seed: int = 0) -> None:
        from nb360.space import nb201, sss

        self.space = space
        self.module = nb201 if space == "tss" else sss
        self.archs = self.module.all_arch_strs()
        self.full = "200" if space == "tss" else "90"
        n = len(self.archs)
        rng = np.random.default_rng(rng_seed)
        self.level = rng.uniform(20, 90, n).astype(np.float32)  # the arch's accuracy level
        self.train_time = rng.uniform(1, 10, n).astype(np.float32)
        self.eval_time = rng.uniform(0.1, 1, n).astype(np.float32)
        self.params = np.round(rng.uniform(0.05, 1.5, n), 6)
        self.flops = np.round(rng.uniform(5, 200, n), 5)
        self.latency = rng.uniform(0.005, 0.03, n)
        seeds12 = (111, 777) if space == "tss" else (777, 888, 999)
        # (dataset, hp, seed, epochs, eval names, eval splits recorded at the last epoch only)
        self.runs = [("cifar10-valid", "12", s, 12, ("x-valid", "ori-test"), ()) for s in seeds12]
        self.runs += [("cifar10", "12", seeds12[0], 12, ("ori-test",), ())]  # simulate_train_eval reads its latency
        self.runs += [("cifar10-valid", self.full, 777, int(self.full), ("x-valid", "ori-test"), ("ori-test",)),
                      ("cifar10", self.full, 777, int(self.full), ("ori-test",), ())]

    def curves(self, k: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Metric names, curves (A, M, E) float32 and presence of run k."""
        dataset, hp, seed, epochs, evals, last_only = self.runs[k]
        n = len(self.archs)
        e = np.arange(1, epochs + 1, dtype=np.float32)
        shift = np.float32((seed % 7) + (0 if hp == "12" else 5))
        acc = (self.level[:, None] + shift) * (1 - np.exp(-e / np.float32(max(epochs / 4, 1))))[None, :]
        loss = np.float32(3.0) / (e[None, :] + self.level[:, None] / np.float32(50))
        names = ["train-loss", "train-accuracy", "train-time"]
        values = [loss, acc + np.float32(2), np.repeat(self.train_time[:, None], epochs, axis=1)]
        for j, split in enumerate(evals):
            names += [f"{split}-loss", f"{split}-accuracy", f"{split}-time"]
            values += [loss + np.float32(0.3 * (j + 1)), acc - np.float32(j + 1),
                       np.repeat(self.eval_time[:, None] * np.float32(j + 1), epochs, axis=1)]
        curves = np.stack(values, axis=1).astype(np.float32)
        present = np.ones(curves.shape, dtype=bool)
        for split in last_only:
            for q in ("loss", "accuracy"):
                present[:, names.index(f"{split}-{q}"), :-1] = False
        return names, curves, present

    def network(self, dataset: str) -> dict:
        if self.space == "tss":
            return {"channel": 16, "num_cells": 5, "class_num": 10}
        return {"name": "infer.shape.tiny", "genotype": self.module.GENOTYPE, "class_num": 10}

    def write_nb360(self, path: Path) -> Path:
        """The nb360 table of these records (written from the arrays, as `nb360 table import` would lay it out)."""
        from nb360.table.writer import RunData, write_table

        runs = []
        n = len(self.archs)
        for k, (dataset, hp, seed, epochs, evals, _) in enumerate(self.runs):
            names, curves, present = self.curves(k)
            scalars = np.stack([self.params, self.flops, self.latency], axis=1)
            runs.append(RunData(task=dataset, hp=hp, seed=seed, metrics=names, scalars=["params", "flops", "latency"],
                                arch_ids=np.arange(n), curves=curves, curves_present=present, scalar_values=scalars,
                                scalars_present=np.ones(scalars.shape, dtype=bool), valid_split=evals[0],
                                time_kind="pseudo", protocol={"network": self.network(dataset)},
                                eval_names=list(evals)))
        layout = {"format": f"nats-{self.space}", "datasets": ["cifar10-valid", "cifar10"], "hps": ["12", self.full]}
        return write_table(path, runs, archs=self.archs, space="nb201" if self.space == "tss" else "sss",
                           provenance={"source_format": "SYNTHETIC (tests/nats_records.py SyntheticNats)"},
                           source_layout=layout)

    def records(self, index: int, cache: dict | None = None) -> dict:
        """{hp: ArchResults state} of one arch, from the same arrays."""
        cache = {} if cache is None else cache
        out = collections.OrderedDict()
        arch = self.archs[index]
        for k, (dataset, hp, seed, epochs, evals, _) in enumerate(self.runs):
            if k not in cache:
                cache[k] = self.curves(k)
            names, curves, present = cache[k]
            c, p = curves[index], present[index]

            def series(metric: str, c=c, p=p, names=names) -> dict:
                m = names.index(metric)
                return {e: float(c[m, e]) for e in range(c.shape[1]) if p[m, e]}

            config = {"channel": 16, "num_cells": 5, "arch_str": arch, "class_num": 10} if self.space == "tss" else \
                {"name": "infer.shape.tiny", "channels": arch, "arch_str": arch, "genotype": self.module.GENOTYPE,
                 "class_num": 10}
            rc = {"name": dataset, "train_acc1es": series("train-accuracy"), "train_acc5es": None,
                  "train_losses": series("train-loss"),
                  "train_times": collections.OrderedDict(series("train-time")), "arch_config": config,
                  "params": np.float64(self.params[index]), "flop": float(self.flops[index]), "seed": f"{seed:04d}",
                  "epochs": epochs, "latency": [np.float64(self.latency[index])], "eval_names": list(evals),
                  "eval_acc1es": {}, "eval_times": {}, "eval_losses": {}, "net_state_dict": None}
            for split in evals:
                for source, q in (("eval_acc1es", "accuracy"), ("eval_losses", "loss"), ("eval_times", "time")):
                    rc[source].update({f"{split}@{e}": v for e, v in series(f"{split}-{q}").items()})
            state = out.setdefault(hp, {"arch_index": index, "arch_str": arch, "all_results": {}, "dataset_seed": {},
                                        "clear_net_done": True})
            state["all_results"][(dataset, seed)] = rc
            state["dataset_seed"].setdefault(dataset, []).append(seed)
        return out

    def write_nats_dir(self, directory: Path, indices) -> Path:
        """A -simple directory (meta + the per-arch files of `indices`) for nats_bench's fast mode."""
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"meta_archs": self.archs, "total_archs": len(self.archs), "arch2infos": None,
                "evaluated_indexes": set()}
        (directory / "meta.pickle.pbz2").write_bytes(bz2.compress(pickle.dumps(meta, protocol=4), compresslevel=1))
        cache: dict = {}
        for index in sorted(indices):
            raw = pickle.dumps(self.records(index, cache), protocol=4)
            (directory / f"{index:06d}.pickle.pbz2").write_bytes(bz2.compress(raw, compresslevel=1))
        return directory
