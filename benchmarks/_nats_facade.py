"""Per-call timings of nb360.compat.nats against nats_bench on the same records, in one process.

Used by table_bench.py's `facade` worker. Data: a full-size SYNTHETIC topology table in the stock
NATS-Bench layout (tests/nats_records.py SyntheticNats: 15,625 archs; cifar10-valid at hp '12' with
seeds 111/777 and at hp '200' with ori-test at the last epoch only; cifar10). nb360 opens its table
of all 15,625 archs; nats_bench (fast mode) reads a -simple directory with the records of `sample`
of them, all loaded before timing so its one-off file reads are not counted. Both sides answer the
same calls with the same arguments, alternating side by side, each figure the best of 3 rounds.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT


def per_call(fn: Any, calls: int, rounds: int = 3) -> float:
    """Best-of-`rounds` mean seconds per call of fn()."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def prepare(work: Path, sample: int) -> tuple[Path, Path, list[int]]:
    """The nb360 table (all archs) and the nats_bench -simple directory (`sample` archs), built once and reused."""
    sys.path.insert(0, str(ROOT / "tests"))
    from nats_records import SyntheticNats

    table = work / "facade-tss-synthetic.h5"
    directory = work / f"NATS-tss-synthetic-{sample}-simple"
    indices = sorted(random.Random(0).sample(range(15625), sample))
    records = None
    if not table.exists():
        records = SyntheticNats("tss")
        records.write_nb360(table)
    if not (directory / f"{indices[-1]:06d}.pickle.pbz2").exists():
        (records or SyntheticNats("tss")).write_nats_dir(directory, indices)
    return table, directory, indices


# name -> (call on an API given arch index i and epoch e, calls per round for nats_bench / nb360)
CALLS: dict[str, tuple[Any, int, int]] = {
    "get_more_info(i, 'cifar10-valid', iepoch=e, hp='200', is_random=777)":
        (lambda api, i, e, s: api.get_more_info(i, "cifar10-valid", iepoch=e, hp="200", is_random=777), 300, 20000),
    "get_more_info(i, 'cifar10-valid', hp='12')  # random seed":
        (lambda api, i, e, s: api.get_more_info(i, "cifar10-valid", hp="12"), 1000, 20000),
    "get_more_info(i, 'cifar10-valid', hp='12', is_random=False)  # seed mean":
        (lambda api, i, e, s: api.get_more_info(i, "cifar10-valid", hp="12", is_random=False), 1000, 20000),
    "get_cost_info(i, 'cifar10-valid', hp='200')":
        (lambda api, i, e, s: api.get_cost_info(i, "cifar10-valid", hp="200"), 30, 20000),
    "get_latency(i, 'cifar10', hp='200')": (lambda api, i, e, s: api.get_latency(i, "cifar10", hp="200"), 30, 20000),
    "simulate_train_eval(i, 'cifar10', hp='12')":
        (lambda api, i, e, s: api.simulate_train_eval(i, "cifar10", hp="12"), 100, 20000),
    "query_by_index(i, 'cifar10-valid', hp='200')":
        (lambda api, i, e, s: api.query_by_index(i, "cifar10-valid", hp="200"), 30, 5000),
    "query_info_str_by_arch(i, '200')": (lambda api, i, e, s: api.query_info_str_by_arch(i, "200"), 30, 1000),
    "get_net_config(i, 'cifar10')": (lambda api, i, e, s: api.get_net_config(i, "cifar10"), 20000, 100000),
    "arch(i)": (lambda api, i, e, s: api.arch(i), 100000, 100000),
    "query_index_by_arch(arch string)": (lambda api, i, e, s: api.query_index_by_arch(s), 100000, 100000),
    "query_index_by_arch(i)": (lambda api, i, e, s: api.query_index_by_arch(i), 100000, 100000),
}


def measure(work: Path, sample: int) -> dict[str, Any]:
    """Per-call seconds of every CALLS entry on both sides, plus a traversal and the call floor."""
    import nats_bench

    from nb360.compat import nats
    from nb360.table import Table

    table, directory, indices = prepare(work, sample)
    ref = nats_bench.create(str(directory), "tss", fast_mode=True, verbose=False)
    ours = nats.create(table, "tss", fast_mode=True, verbose=False)
    for i in indices:  # nats_bench loads each arch's file on first use: load them all before timing
        ref.get_more_info(i, "cifar10-valid", hp="12")
        ours.get_more_info(i, "cifar10-valid", hp="12")
    rng = random.Random(1)
    # Arch strings as scripts pass them: fresh str objects (from a structure's .tostr()), not the API's own keys.
    args = [(i, rng.randrange(200), "".join(list(ref.arch(i)))) for i in (rng.choice(indices) for _ in range(4096))]
    out: dict[str, Any] = {"sample_archs": sample, "calls": {}}

    def timed(call: Any, api: Any, n: int) -> float:
        k = iter(range(10**9))

        def one() -> Any:
            i, e, s = args[next(k) & 4095]
            return call(api, i, e, s)

        random.seed(0)
        return per_call(one, n)

    # The harness itself (argument cycling, the call through a lambda) with a no-op in place of the API call:
    # subtracted to give the net per-call figures (both sides pay it equally).
    out["harness"] = timed(lambda api, i, e, s: None, None, 100000)
    for name, (call, n_ref, n_ours) in CALLS.items():
        out["calls"][name] = {"nats": timed(call, ref, n_ref), "nb360": timed(call, ours, n_ours)}
    # One arch's whole curve through get_more_info, as a traversal does (the 1000 archs x 200 epochs).
    for side, api, archs in (("nats", ref, indices[:20]), ("nb360", ours, indices[:sample])):
        start = time.perf_counter()
        for i in archs:
            for e in range(200):
                api.get_more_info(i, "cifar10-valid", iepoch=e, hp="200", is_random=777)
        out[f"traversal_{side}_s_per_arch"] = (time.perf_counter() - start) / len(archs)
    # Floors: a Python function call and a C builtin call, measured the same way.
    noop = lambda x: x  # noqa: E731
    out["floor_python_call"] = per_call(lambda: noop(1), 100000)
    out["floor_builtin_call"] = per_call(lambda: abs(1), 100000)
    t = Table.open(table)
    t.query(0, "x-valid-accuracy", 0, hp="200", seed=777, task="cifar10-valid")
    k = iter(range(10**9))
    out["table_query"] = per_call(lambda: t.query(args[next(k) & 4095][0], "x-valid-accuracy", args[next(k) & 4095][1],
                                                  seed=777, hp="200", task="cifar10-valid"), 100000)
    return out


def report(f: dict[str, Any]) -> str:
    """The Markdown table of the facade figures."""
    us, h = 1e6, f["harness"]
    lines = [f"nb360.compat.nats vs nats_bench, same process, same calls and arguments (SYNTHETIC full-size topology "
             f"table; nats_bench fast mode with the {f['sample_archs']:,} timed archs preloaded). Per call: the "
             f"measured mean, and net of the {h * us:.3f} µs the timing harness itself costs (a no-op in its place).",
             "", "| call | nats_bench: measured / net | nb360: measured / net | ratio of net (measured) | ≥ 10× |",
             "|---|---|---|---|---|"]
    for name, fig in f["calls"].items():
        net_ref, net_ours = fig["nats"] - h, max(fig["nb360"] - h, 1e-9)
        ratio = net_ref / net_ours
        lines.append(f"| `{name}` | {fig['nats'] * us:,.2f} / {net_ref * us:,.2f} µs | {fig['nb360'] * us:.3f} / "
                     f"{net_ours * us:.3f} µs | {ratio:,.1f}× ({fig['nats'] / fig['nb360']:,.1f}×) | "
                     f"{'✓' if ratio >= 10 else '✗'} |")
    traversal = f["traversal_nats_s_per_arch"] / f["traversal_nb360_s_per_arch"]
    lines.append(f"| one arch's 200-epoch curve via `get_more_info` (200 calls) | {f['traversal_nats_s_per_arch'] * 1e3:.1f} "
                 f"ms | {f['traversal_nb360_s_per_arch'] * 1e3:.3f} ms | {traversal:,.0f}× | |")
    lines += ["", f"Call floors in this process: a Python function call {f['floor_python_call'] * us:.3f} µs, a C builtin "
                  f"call {f['floor_builtin_call'] * us:.3f} µs (loop included). `Table.query` on the same table: "
                  f"{f['table_query'] * us:.2f} µs per call (random arch and epoch, through the same kind of loop)."]
    return "\n".join(lines)
