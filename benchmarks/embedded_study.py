"""How reproducible is an embedded-table protocol? Seed noise, rebuild noise and the ranking of the top cells.

Trains a sample of distinct NB201 cells (the embedded table's best 16 plus 16 drawn at random, seeded; the
study in benchmarks/RESULTS.md drew them from the v1 table, and WORK's study.json keeps a sample once drawn)
on the embedded Darcy Flow data under each candidate protocol, with `nb360 table build` itself:
three seeds with the batched builder, and seed 0 again one arch at a time (a rebuild through other
float arithmetic: grouped vs single convolutions, as a rebuild on another CPU differs). Prints, per protocol:

- rebuild noise: the largest |difference| of the final test relative L2 between the two builds of seed 0,
  and how many cells moved by more than 1 %;
- seed noise: the median and largest standard deviation over the three seeds, and the standard error of a
  three-seed mean;
- the spread that must be resolved: the gap between the sample's best and its 10th-best seed mean;
- ranking stability: how many of the sample's top 10 by three-seed mean stay in the top 10 when seed 0 is
  replaced by its rebuild; the spread of the cells' three-seed means (what seed noise has to be small against).

  .venv/bin/python benchmarks/embedded_study.py --data .embedded-build/data --work .embedded-build/study

`--rebuild-top-of TABLE` instead rebuilds a built table's 50 best cells (three-seed mean at its highest
fidelity, the one searches report) for seed 777 one arch at a time, and reports the largest difference and
how many of the 50 keep their rank when seed 777 is replaced by its rebuild. Resumable: each build keeps its work directory.
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

PROTOCOLS = {"lr0.05-hp4": {"lr": 0.05, "epochs": 4}, "lr0.02-hp4": {"lr": 0.02, "epochs": 4},
             "lr0.02-hp12": {"lr": 0.02, "epochs": 12}, "lr0.02-hp24": {"lr": 0.02, "epochs": 24},
             "lr0.05-hp24": {"lr": 0.05, "epochs": 24}}
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
    return {"between_cell_std": float(mean.std(ddof=1)), "rebuild_max_abs": float(diff.max()), "rebuild_max_rel": float((diff / runs[0]).max()),
            "rebuild_over_1pct": int((diff / runs[0] > 0.01).sum()), "seed_std_median": float(np.median(std)),
            "seed_std_max": float(std.max()), "mean_stderr_median": float(np.median(std) / np.sqrt(len(runs))),
            "best": float(order[0]), "gap_best_to_10th": float(order[9] - order[0]),
            "top10_kept": len(top & set(np.argsort(swapped)[:10])),
            "seed_rank_corr": float(np.corrcoef(np.argsort(np.argsort(runs[0])),
                                                np.argsort(np.argsort(runs[1:].mean(0))))[0, 1])}


def rebuild_check(table_path: str, args, top: int = 50, hp: str | None = None, seed: int = 777) -> dict:
    """Rebuild a built table's `top` cells (by seed mean) for one seed one arch at a time; compare with the table."""
    from nb360.table import Table

    table = Table.open(table_path)
    # the highest fidelity by default: the one searches report and the main job ranks by
    hp = hp or max({r.hp for r in table.runs}, key=int)
    run = next(r for r in table.runs if r.hp == hp and r.seed == seed)
    build_spec = run.protocol["build"]
    ids = table.arrays(hp=hp, seed=seed)[0]
    seeds = table.seeds(hp)
    values = np.array([table.query_batch(ids, METRIC, -1, hp=hp, seed=s) for s in seeds])
    mean = values.mean(0)
    order = np.argsort(mean)
    cells = sorted(int(a) for a in ids[order[:top]])
    protocol = {"lr": build_spec["lr"], "epochs": build_spec["epochs"]}
    # --data: the table records its data root relative to where it was built (the same files, checked by sha256 below)
    again = build(f"rebuild-top{top}-hp{hp}-seed{seed}", cells, protocol, (seed,), 1, args)[seed]
    rebuilt_table = Table.open(Path(args.work) / f"rebuild-top{top}-hp{hp}-seed{seed}.h5")

    def mats(r) -> dict:
        return {f: d["sha256"] for f, d in r.protocol["data"]["files"].items() if f.endswith(".mat")}

    if mats(rebuilt_table.runs[0]) != mats(run):
        raise SystemExit(f"--data {args.data} holds other files than {table_path} was trained on")
    row = seeds.index(seed)
    rebuilt = values.copy()
    rebuilt[row] = [again.get(int(a), values[row, i]) for i, a in enumerate(ids)]
    diff = np.array([abs(again[a] - values[row, list(ids).index(a)]) for a in cells])
    new_order = np.argsort(rebuilt.mean(0))
    old_rank = {int(ids[i]): r for r, i in enumerate(order)}
    new_rank = {int(ids[i]): r for r, i in enumerate(new_order)}
    top_cells = [int(ids[i]) for i in order[:top]]
    return {"cells": len(cells), "hp": hp, "seed": seed, "max_abs_diff": float(diff.max()),
            "max_rel_diff": float((diff / np.array([again[a] for a in cells])).max()),
            "median_abs_diff": float(np.median(diff)),
            "top_kept_exact_rank": sum(old_rank[a] == new_rank[a] for a in top_cells),
            "top_kept_in_top": len(set(top_cells) & {int(ids[i]) for i in new_order[:top]}),
            "best_kept": bool(order[0] == new_order[0]), "top10_kept_in_top10":
                len({int(ids[i]) for i in order[:10]} & {int(ids[i]) for i in new_order[:10]})}


def describe(table_path: str) -> dict:
    """Seed noise, between-cell spread, the best cells and the fidelities' agreement of a multi-seed table."""
    from nb360.table import Table

    table = Table.open(table_path)
    hps = sorted({r.hp for r in table.runs}, key=int)
    out: dict = {"hps": hps}
    means = {}
    for hp in hps:
        ids = table.arrays(hp=hp, seed=table.seeds(hp)[0])[0]
        v = np.array([table.query_batch(ids, METRIC, -1, hp=hp, seed=s) for s in table.seeds(hp)])
        mean, std = v.mean(0), v.std(0, ddof=1)
        order = np.argsort(mean)
        means[hp] = dict(zip(map(int, ids), mean))
        # split half: one seed against the mean of the others, over all cells (Spearman)
        rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731
        out[hp] = {"cells": len(ids), "seeds": table.seeds(hp), "median_of_means": float(np.median(mean)),
                   "best": [{"arch": int(ids[i]), "mean": float(mean[i]), "std": float(std[i])} for i in order[:10]],
                   "seed_std_median": float(np.median(std)), "seed_std_max": float(std.max()),
                   "between_cell_std_of_means": float(mean.std(ddof=1)),
                   "one_seed_vs_others_spearman": float(np.corrcoef(rank(v[0]), rank(v[1:].mean(0)))[0, 1])}
    if len(hps) > 1:
        low, high = hps[0], hps[-1]
        common = sorted(set(means[low]) & set(means[high]))
        a, b = np.array([means[low][c] for c in common]), np.array([means[high][c] for c in common])
        out["fidelity_spearman"] = float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rebuild-top-of", metavar="TABLE",
                        help="instead: rebuild TABLE's 50 best cells (highest fidelity) for seed 777 one arch at a time and compare")
    parser.add_argument("--rebuild-hp", metavar="HP", help="the fidelity --rebuild-top-of rebuilds (default: the highest)")
    parser.add_argument("--describe", metavar="TABLE", help="instead: print a multi-seed table's noise and spread")
    parser.add_argument("--protocols", nargs="+", choices=sorted(PROTOCOLS), default=list(PROTOCOLS),
                        help="the protocols to compare (default: all; built ones are read back from WORK)")
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if args.describe:
        print(json.dumps(describe(args.describe), indent=2))
        return
    if args.rebuild_top_of:
        result = rebuild_check(args.rebuild_top_of, args, hp=args.rebuild_hp)
        print(json.dumps(result, indent=2))
        (Path(args.work) / f"rebuild-hp{result['hp']}.json").write_text(json.dumps(result, indent=2))
        return
    previous = Path(args.work) / "study.json"
    # The cells of an earlier study in WORK are kept, so protocols added later are compared on the same sample.
    earlier = json.loads(previous.read_text()) if previous.exists() else {"cells": sample_cells(), "results": {}}
    cells = earlier["cells"]
    print(f"machine: {machine('torch')}; {len(cells)} cells", flush=True)
    results = earlier["results"]
    for name in args.protocols:
        protocol = PROTOCOLS[name]
        stacked = build(f"{name}-stacked", cells, protocol, (0, 1, 2), 16, args)
        rebuilt = build(f"{name}-rebuild", cells, protocol, (0,), 1, args)
        results[name] = analyse(cells, stacked, rebuilt)
        print(name, json.dumps(results[name]), flush=True)
        previous.write_text(json.dumps({"cells": cells, "results": results}, indent=2))


if __name__ == "__main__":
    main()
