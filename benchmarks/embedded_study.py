"""How reproducible is an embedded-table protocol? Seed noise, rebuild noise and the ranking of the top cells.

Trains a sample of distinct NB201 cells (the v1 embedded table's best 16 plus 16 drawn at random, seeded)
on the embedded Darcy Flow data under each candidate protocol, with `nb360 table build` itself:
three seeds with the batched builder, and seed 0 again one arch at a time (a rebuild through other
float arithmetic: grouped vs single convolutions, as a rebuild on another CPU differs). Prints, per protocol:

- rebuild noise: the largest |difference| of the final test relative L2 between the two builds of seed 0,
  and how many cells moved by more than 1 %;
- seed noise: the median and largest standard deviation over the three seeds, and the standard error of a
  three-seed mean;
- the spread that must be resolved: the gap between the sample's best and its 10th-best seed mean;
- ranking stability: how many of the sample's top 10 by three-seed mean stay in the top 10 when seed 0 is
  replaced by its rebuild.

  .venv/bin/python benchmarks/embedded_study.py --data .embedded-build/data --work .embedded-build/study
Resumable: each build keeps its work directory.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

PROTOCOLS = {"lr0.05-hp4": {"lr": 0.05, "epochs": 4}, "lr0.02-hp4": {"lr": 0.02, "epochs": 4}}
METRIC = "ori-test-rel_l2"


def sample_cells(n_top: int = 16, n_random: int = 16, seed: int = 0) -> list[int]:
    """The v1 table's best n_top cells and n_random other distinct cells, drawn with `seed`."""
    from nb360.space import nb201
    from nb360.table import Table
    from nb360.table.embedded import embedded_table_path

    table = Table.open(embedded_table_path())
    unique = np.array(nb201.unique_indices())
    values = table.query_batch(unique, METRIC, -1, hp="4", missing="nan")
    top = [int(a) for a in unique[np.argsort(values)[:n_top]]]
    rest = sorted(set(map(int, unique)) - set(top))
    return sorted(top + random.Random(seed).sample(rest, n_random))


def build(name: str, cells: list[int], protocol: dict, seeds: tuple[int, ...], stack: int, args) -> dict[int, dict]:
    """Build one table of `cells`; return {seed: {arch: final test rel L2}}."""
    from nb360.build import BuildSpec, build_table
    from nb360.table import Table

    spec = BuildSpec(task="darcyflow", data_root=args.data, epochs=protocol["epochs"], seeds=seeds,
                     archs=",".join(map(str, cells)), channels=4, cells=1, batch_size=32, lr=protocol["lr"],
                     stack=stack)
    out = Path(args.work) / f"{name}.h5"
    if not out.exists():
        build_table(spec, out, work_dir=Path(args.work) / f"{name}.work", shard_size=32, workers=args.workers,
                    progress=False)
    table = Table.open(out)
    hp = str(protocol["epochs"])
    return {s: dict(zip(cells, table.query_batch(np.array(cells), METRIC, -1, hp=hp, seed=s).tolist())) for s in seeds}


def analyse(cells: list[int], stacked: dict[int, dict], rebuilt: dict[int, dict]) -> dict:
    """The figures of one protocol (see the module docstring)."""
    runs = np.array([[stacked[s][a] for a in cells] for s in sorted(stacked)])  # (3, cells)
    again = np.array([rebuilt[0][a] for a in cells])
    diff = np.abs(runs[0] - again)
    mean = runs.mean(0)
    std = runs.std(0, ddof=1)
    swapped = np.vstack([again, runs[1:]]).mean(0)
    top = set(np.argsort(mean)[:10])
    order = np.sort(mean)
    return {"rebuild_max_abs": float(diff.max()), "rebuild_max_rel": float((diff / runs[0]).max()),
            "rebuild_over_1pct": int((diff / runs[0] > 0.01).sum()), "seed_std_median": float(np.median(std)),
            "seed_std_max": float(std.max()), "mean_stderr_median": float(np.median(std) / np.sqrt(len(runs))),
            "best": float(order[0]), "gap_best_to_10th": float(order[9] - order[0]),
            "top10_kept": len(top & set(np.argsort(swapped)[:10])),
            "seed_rank_corr": float(np.corrcoef(np.argsort(np.argsort(runs[0])),
                                                np.argsort(np.argsort(runs[1:].mean(0))))[0, 1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    cells = sample_cells()
    print(f"machine: {machine('torch')}; {len(cells)} cells", flush=True)
    results = {}
    for name, protocol in PROTOCOLS.items():
        stacked = build(f"{name}-stacked", cells, protocol, (0, 1, 2), 16, args)
        rebuilt = build(f"{name}-rebuild", cells, protocol, (0,), 1, args)
        results[name] = analyse(cells, stacked, rebuilt)
        print(name, json.dumps(results[name]), flush=True)
    (Path(args.work) / "study.json").write_text(json.dumps({"cells": cells, "results": results}, indent=2))


if __name__ == "__main__":
    main()
