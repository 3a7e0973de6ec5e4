"""Table lookup benchmark: nb360's memory-mapped table against nats_bench on the same records.

Generates a full-size table in the released NAS-Bench-360 single-file layout (15,625 archs x 200
epochs, ninapro-like; SYNTHETIC seeded values in the structure of the real fixture records), opens
it with nats_bench (PyPI) and, after `nb360 table import`, with nb360, and measures side by side:
open time, peak RSS, single-query latency from Python, batched throughput, and a full traversal of
every arch x epoch x metric. Each side runs in its own fresh process so RSS figures are its own.
Then the NATS-Bench facade (nb360.compat.nats) against nats_bench, call by call in one process
(benchmarks/_nats_facade.py).

The cost of nb360's checksums (every chunk checked on first touch before a value is returned) is
measured in the same nb360 process against a handle opened with verify=False (the same reader,
checksums skipped): open, single queries after the first touch, the first touch of a chunk, and
checking a whole run.

    .venv/bin/python benchmarks/table_bench.py            # full size (a few minutes, ~4 GB RAM peak)
    .venv/bin/python benchmarks/table_bench.py --quick    # 1,000 archs, for a smoke run
    .venv/bin/python benchmarks/table_bench.py --facade-only   # only the facade figures
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import _common
from _common import ROOT, machine, memory
WORK = ROOT / "benchmarks" / ".work"
METRICS = ("train-loss", "train-accuracy", "train-time", "ori-test-loss", "ori-test-accuracy", "ori-test-time")


def per_call(fn, calls: int) -> float:
    """Mean seconds per call of fn() over `calls` calls (best of 3 runs)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


# ---------------------------------------------------------------------------------------------- workers
def worker_generate(source: str, num_archs: int) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from nats_records import synthetic_nb360_file

    start = time.perf_counter()
    synthetic_nb360_file(Path(source), num_archs=num_archs, epochs=200, rng_seed=0)
    return {"seconds": time.perf_counter() - start, "bytes": os.path.getsize(source)}


def worker_import(source: str, table: str) -> dict:
    from nb360.table.importer import import_nats

    start = time.perf_counter()
    import_nats(source, table)
    return {"seconds": time.perf_counter() - start, "bytes": os.path.getsize(table), "memory": memory()}


def worker_nb360(table: str, num_archs: int) -> dict:
    import numpy as np

    from nb360.table import Table

    out: dict = {"memory_before_open": memory()}
    start = time.perf_counter()
    t = Table.open(table)
    out["open_first_s"] = time.perf_counter() - start
    opens = []
    for _ in range(50):
        start = time.perf_counter()
        Table.open(table)
        opens.append(time.perf_counter() - start)
    out["open_median_s"] = float(np.median(opens))
    opens = []
    for _ in range(50):
        start = time.perf_counter()
        Table.open(table, verify=False)
        opens.append(time.perf_counter() - start)
    out["open_unverified_median_s"] = float(np.median(opens))
    out["memory_after_open"] = memory()

    rng = np.random.default_rng(0)
    archs = rng.integers(0, num_archs, 4096).tolist()
    epochs = rng.integers(0, 200, 4096).tolist()
    t.query(0, "ori-test-accuracy", 0)
    i = iter(range(10**9))

    def one() -> float:
        k = next(i) & 4095
        return t.query(archs[k], "ori-test-accuracy", epochs[k])

    out["query_s"] = per_call(one, 200_000)
    # Full traversal: every recorded value (arch x metric x epoch), read through the zero-copy views.
    def traverse() -> float:
        ids, curves, present = t.arrays()
        total = 0.0
        for k in range(curves.shape[1]):
            block = curves[:, k, :]
            total += float(block[present[:, k, :]].sum(dtype=np.float64))
        return total

    start = time.perf_counter()
    traverse()
    out["traversal_first_s"] = time.perf_counter() - start
    out["traversal_s"] = per_call(traverse, 3)
    ids, curves, present = t.arrays()
    out["traversal_values"] = int(present.size)
    # Memory now, before the baselines below allocate their own arrays.
    out["memory_after_traversal"] = memory()
    t.release_pages()
    out["memory_after_release"] = memory()
    n = 1_000_000
    a = rng.integers(0, num_archs, n)
    e = rng.integers(0, 200, n)
    t.query_batch(a[:10], "ori-test-accuracy", e[:10])
    out["batch_same_metric_s"] = per_call(lambda: t.query_batch(a, "ori-test-accuracy", e), 3)
    out["batch_n"] = n
    # Baseline: numpy fancy indexing (a take) on the same values held in RAM as one array.
    ids, curves, present = t.arrays()
    in_ram = np.array(curves)  # a copy in anonymous memory
    m = t.metrics().index("ori-test-accuracy")
    rows = np.searchsorted(ids, a)
    out["numpy_take_s"] = per_call(lambda: in_ram[rows, m, e], 3)
    in_ram = None  # free the copy
    run = t._select(None, "200", None)[0]
    m_idx = np.array([run.metric_index[x] for x in METRICS])[rng.integers(0, len(METRICS), n)]
    out["raw_gather_s"] = per_call(lambda: run.view.gather(a, m_idx, e), 3)

    # The same traversal through query_batch (C++ gather of every index).
    grid_a, grid_m, grid_e = np.meshgrid(np.arange(num_archs), np.arange(len(METRICS)), np.arange(200),
                                         indexing="ij")
    start = time.perf_counter()
    for k, name in enumerate(METRICS):
        t.query_batch(grid_a[:, k, :], name, grid_e[:, k, :])
    out["traversal_batch_s"] = time.perf_counter() - start
    del grid_a, grid_m, grid_e
    # Checksum cost, measured last so the extra handles do not count in the RSS figures above: the same
    # queries on a handle that skips the checksums (same process, same pages).
    u = Table.open(table, verify=False)
    u.query(0, "ori-test-accuracy", 0)

    def one_unverified() -> float:
        k = next(i) & 4095
        return u.query(archs[k], "ori-test-accuracy", epochs[k])

    # Interleaved rounds, best of each, so a change in the machine's load hits both sides alike.
    verified, unverified = [], []
    for _ in range(3):
        verified.append(per_call(one, 100_000))
        unverified.append(per_call(one_unverified, 100_000))
    out["query_checked_s"], out["query_unverified_s"] = min(verified), min(unverified)
    # First touch of a chunk: a fresh handle per round, each query on an arch row of a chunk not touched yet.
    row_bytes = len(t.metrics()) * 200 * 4
    per_chunk = max(1, 65536 // row_bytes)
    cold_archs = list(range(0, num_archs, per_chunk * 3))[:200]
    for verify in (True, False):
        fresh = Table.open(table, verify=verify)
        fresh.query(0, "ori-test-accuracy", 0, hp="200")
        fresh.release_pages()  # cold pages on both sides
        start = time.perf_counter()
        for a in cold_archs[1:]:
            fresh.query(a, "ori-test-accuracy", 199, hp="200")
        out[f"first_touch_{'verified' if verify else 'unverified'}_s"] = (time.perf_counter() - start) / (
            len(cold_archs) - 1)
    # Checking a whole run (what the first Table.arrays() or Table.verify() does).
    for verify in (True, False):
        fresh = Table.open(table, verify=verify)
        start = time.perf_counter()
        fresh.arrays()
        out[f"arrays_first_{'verified' if verify else 'unverified'}_s"] = time.perf_counter() - start
    u = fresh = None  # their mappings go with them

    out["file_mb"] = os.path.getsize(table) / 1e6
    return out


def worker_nats(source: str, num_archs: int) -> dict:
    import random

    import nats_bench

    out: dict = {"memory_before_open": memory()}
    start = time.perf_counter()
    api = nats_bench.create(source, "tss", fast_mode=False, verbose=False)
    out["open_s"] = time.perf_counter() - start
    out["memory_after_open"] = memory()
    rng = random.Random(0)
    idx = [rng.randrange(num_archs) for _ in range(4096)]
    ep = [rng.randrange(200) for _ in range(4096)]
    i = iter(range(10**9))

    def more_info() -> dict:
        k = next(i) & 4095
        return api.get_more_info(idx[k], "ninapro", iepoch=ep[k], hp="200", is_random=777)

    out["get_more_info_s"] = per_call(more_info, 2000)
    # One curve point = one metric at one epoch, the unit of a traversal.
    results = api.arch2infos_dict

    def curve_point() -> float:
        k = next(i) & 4095
        return results[idx[k]]["200"].get_metrics("ninapro", "ori-test", iepoch=ep[k], is_random=777)["accuracy"]

    out["curve_point_s"] = per_call(curve_point, 2000)
    # Traversal: every metric at every epoch of a sample of archs via get_more_info, extrapolated.
    sample = 100
    start = time.perf_counter()
    for a in range(sample):
        for e in range(200):
            api.get_more_info(a, "ninapro", iepoch=e, hp="200", is_random=777)
    out["traversal_sample_s"] = time.perf_counter() - start
    out["traversal_sample_archs"] = sample
    out["traversal_extrapolated_s"] = out["traversal_sample_s"] * num_archs / sample
    out["memory_after_traversal_sample"] = memory()
    return out


def worker_facade(sample: int) -> dict:
    import _nats_facade

    return _nats_facade.measure(WORK, sample)


WORKERS = {"generate": worker_generate, "import": worker_import, "nb360": worker_nb360, "nats": worker_nats,
           "facade": worker_facade}


def run_worker(name: str, *args: object) -> dict:
    return _common.run_worker(__file__, name, *args)


# ---------------------------------------------------------------------------------------------- report
def report(gen: dict, imp: dict, ours: dict, nats: dict, num_archs: int) -> str:
    us = 1e6
    mb_file = ours["file_mb"]
    checks = [
        ("open", f"{ours['open_unverified_median_s'] * 1e3:.3f} ms", f"{ours['open_median_s'] * 1e3:.3f} ms",
         f"{ours['open_median_s'] / ours['open_unverified_median_s']:.2f}×", "≤ 5 ms"),
        ("single query after the first touch (interleaved rounds)", f"{ours['query_unverified_s'] * us:.2f} µs",
         f"{ours['query_checked_s'] * us:.2f} µs", f"{ours['query_checked_s'] / ours['query_unverified_s']:.2f}×",
         "≤ 2 µs"),
        ("query touching a chunk for the first time (two 64 KiB chunks hashed)",
         f"{ours['first_touch_unverified_s'] * us:.1f} µs", f"{ours['first_touch_verified_s'] * us:.1f} µs",
         f"+{(ours['first_touch_verified_s'] - ours['first_touch_unverified_s']) * us:.1f} µs", ""),
        ("first Table.arrays() of the run (checks every chunk of it)",
         f"{ours['arrays_first_unverified_s'] * 1e3:.1f} ms", f"{ours['arrays_first_verified_s'] * 1e3:.1f} ms",
         f"+{(ours['arrays_first_verified_s'] - ours['arrays_first_unverified_s']) * 1e3:.1f} ms", ""),
    ]
    rows = [
        ("open", f"{nats['open_s']:.2f} s", f"{ours['open_median_s'] * 1e3:.3f} ms (first {ours['open_first_s'] * 1e3:.2f} ms)",
         f"{nats['open_s'] / ours['open_median_s']:,.0f}× faster", "≤ 5 ms"),
        ("RSS after open", f"{nats['memory_after_open']['VmRSS']:.0f} MB",
         f"{ours['memory_after_open']['VmRSS']:.0f} MB", "", ""),
        ("single query from Python", f"{nats['get_more_info_s'] * us:.0f} µs (get_more_info); "
                                     f"{nats['curve_point_s'] * us:.1f} µs (one curve point)",
         f"{ours['query_s'] * us:.2f} µs (Table.query)",
         f"{nats['curve_point_s'] / ours['query_s']:,.0f}× faster per point", "≤ 2 µs"),
        ("batched gather, 1M values", "—",
         f"{ours['batch_same_metric_s'] * 1e3:.1f} ms (query_batch); {ours['raw_gather_s'] * 1e3:.1f} ms (C++ gather)",
         f"{ours['batch_same_metric_s'] / ours['numpy_take_s']:.2f}× numpy take ({ours['numpy_take_s'] * 1e3:.1f} ms "
         f"on an in-RAM array)", "≤ 1.5× numpy"),
        (f"full traversal ({ours['traversal_values'] / 1e6:.2f}M values)",
         f"{nats['traversal_extrapolated_s']:.0f} s (extrapolated from {nats['traversal_sample_archs']} archs: "
         f"{nats['traversal_sample_s']:.1f} s)",
         f"{ours['traversal_s'] * 1e3:.1f} ms (views; first {ours['traversal_first_s'] * 1e3:.1f} ms); "
         f"{ours['traversal_batch_s']:.2f} s (query_batch)",
         f"{nats['traversal_extrapolated_s'] / ours['traversal_s']:,.0f}×", "< 0.1 s"),
        ("RSS after traversal", f"{nats['memory_after_traversal_sample']['VmRSS']:.0f} MB",
         f"{ours['memory_after_traversal']['VmRSS']:.0f} MB (anon {ours['memory_after_traversal']['RssAnon']:.0f} MB, "
         f"file-backed {ours['memory_after_traversal']['RssFile']:.0f} MB: the mapped table pages); "
         f"{ours['memory_after_release']['VmRSS']:.0f} MB after Table.release_pages() (file-backed "
         f"{ours['memory_after_release']['RssFile']:.0f} MB); peak {ours['memory_after_traversal']['VmHWM']:.0f} MB",
         "", "small vs file"),
    ]
    lines = [
        f"Synthetic full-size NAS-Bench-360-layout table: {num_archs:,} archs × 200 epochs × 6 metrics "
        f"(ninapro-like, seeded values; SYNTHETIC). Source .pickle.pbz2 {gen['bytes'] / 1e6:.0f} MB "
        f"(generated in {gen['seconds']:.0f} s); nb360 table {mb_file:.0f} MB (imported in {imp['seconds']:.0f} s, "
        f"import peak RSS {imp['memory']['VmHWM']:.0f} MB).",
        "",
        "| figure | nats_bench on the .pbz2 | nb360 | ratio | target |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    lines += ["", "Checksum cost (same nb360 process; baseline: the same table opened with verify=False):", "",
              "| figure | checksums skipped (baseline) | checksums checked (default) | cost | target |",
              "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in checks]
    lines += ["", f"Machine: {machine('nb360', 'nats_bench', 'numpy')}. Command: `.venv/bin/python benchmarks/table_bench.py"
                  f"{' --quick' if num_archs < 15625 else ''}`."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 archs instead of 15,625")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="also print the raw measurements as JSON")
    parser.add_argument("--facade-only", action="store_true",
                        help="only the NATS-Bench facade figures (nb360.compat.nats vs nats_bench, per call)")
    args = parser.parse_args()
    if args.worker:
        name, *rest = args.worker
        fn = WORKERS[name]
        conv = [int(x) if x.isdigit() else x for x in rest]
        print(json.dumps(fn(*conv)))
        return
    num_archs = 1000 if args.quick else 15625
    WORK.mkdir(parents=True, exist_ok=True)
    print("measuring the NATS-Bench facade ...", file=sys.stderr)
    facade = run_worker("facade", 200 if args.quick else 1000)
    if args.facade_only:
        import _nats_facade

        if args.json:
            print(json.dumps(facade, indent=2))
        print(_nats_facade.report(facade) + f"\n\nMachine: {machine('nb360', 'nats_bench', 'numpy')}.")
        return
    source = WORK / f"NATS-tss-synthetic-ninapro-{num_archs}.pickle.pbz2"
    table = WORK / f"synthetic-ninapro-{num_archs}.h5"
    gen_file = source.with_suffix(".json")
    if source.exists() and gen_file.exists():
        gen = json.loads(gen_file.read_text())
    else:
        print(f"generating {source.name} ...", file=sys.stderr)
        gen = run_worker("generate", source, num_archs)
        gen_file.write_text(json.dumps(gen))
    print("importing ...", file=sys.stderr)
    imp = run_worker("import", source, table)
    print("measuring nb360 ...", file=sys.stderr)
    ours = run_worker("nb360", table, num_archs)
    print("measuring nats_bench ...", file=sys.stderr)
    nats = run_worker("nats", source, num_archs)
    if args.json:
        print(json.dumps({"generate": gen, "import": imp, "nb360": ours, "nats": nats, "facade": facade}, indent=2))
    import _nats_facade

    print(report(gen, imp, ours, nats, num_archs) + "\n\n" + _nats_facade.report(facade))


if __name__ == "__main__":
    main()
