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
