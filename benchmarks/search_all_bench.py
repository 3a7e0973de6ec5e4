"""Every tabular method, 500 repeats, protocol nb360, on a full-size table: nb360's vectorised search against the
reference loops (NAS-Bench-360's scripts re-implemented through nb360's NATS facade; Hyperband / BOHB through
hpbandster's own iteration objects and config generators, as tests/test_search_fidelity.py drives them).

Table: the SYNTHETIC structured table of tests/test_search_tabular.py (all 15,625 archs, a 12-epoch search
fidelity with two seeds, so Hyperband / BOHB have their three budgets 1.33 / 4 / 12 epochs), budget 800 simulated
seconds (≈ 15 queries per repeat for the budget-bound methods); Hyperband and BOHB run NAS-Bench-360's 300
iterations (2,000 queries per repeat). The baselines are timed on a few repeats in the same process and scaled to
500 (they are sequential per repeat), so the ratio is nb360's time for 500 repeats against the baseline's
estimated time for 500.

    .venv/bin/python benchmarks/search_all_bench.py [--repeats 500] [--baseline-repeats 10]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import _common
from _common import ROOT, machine

WORK = ROOT / "benchmarks" / ".work"
BUDGET = 800.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--baseline-repeats", type=int, default=10)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    import torch  # noqa: F401  (imported before any timing: the REINFORCE reference uses it)
    from test_search_fidelity import (config_space, hyperband_iterations, ref_hyperband, ref_random, ref_rea,
                                      ref_reinforce)
    from test_search_tabular import build_structured_table

    from nb360.compat import nats
    from nb360.search.tabular import ALGORITHMS, TabularProblem, run

    WORK.mkdir(parents=True, exist_ok=True)
    table = WORK / "structured-search.h5"
    if not table.exists():
        build_structured_table(table)
    problem = TabularProblem.from_table(str(table))
    api = nats.create(str(table), "tss")
    cs = config_space()
    print(f"# {machine('numpy', 'hpbandster', 'statsmodels')}; load average {_common.os.getloadavg()[0]:.1f}")
    rows = []
    for method in ALGORITHMS:
        start = time.perf_counter()
        result = run(method, problem, BUDGET, repeats=args.repeats, seed=0)
        ours = time.perf_counter() - start
        s = result.summary()
        baseline, per_repeat = "", None
        random.seed(0)
        if method in ("rs", "rea", "reinforce"):
            loop = {"rs": ref_random, "rea": ref_rea, "reinforce": ref_reinforce}[method]
            start = time.perf_counter()
            for _ in range(args.baseline_repeats):
                loop(api, BUDGET)
            per_repeat = (time.perf_counter() - start) / args.baseline_repeats
            baseline = "reference loop through the NATS facade"
        elif method == "hyperband":
            start = time.perf_counter()
            ref_hyperband(api, 300, cs)
            per_repeat = time.perf_counter() - start
            baseline = "hpbandster iterations through the NATS facade (1 repeat)"
        elif method == "bohb":
            per_repeat = bohb_reference_seconds(api, cs, hyperband_iterations)
            baseline = "hpbandster's BOHB config generator + iterations (1 repeat)"
        ratio = f"{per_repeat * args.repeats / ours:,.0f}×" if per_repeat else "—"
        est = f"{per_repeat * args.repeats:,.0f}" if per_repeat else "—"
        rows.append(f"| {method} | {ours:.2f} | {s['queries_mean']:.0f} | {s['final_mean']:.3f} ± {s['final_std']:.3f} "
                    f"| {est} | {ratio} | {baseline or 'none (not run by NAS-Bench-360)'} |")
        print(rows[-1], flush=True)
    print("| method | nb360, 500 repeats (s) | queries per repeat | final, mean ± std | baseline for 500 (s, "
          "estimated) | speed-up | baseline |")
    print("\n".join(rows))
    return 0


def bohb_reference_seconds(api, cs, hyperband_iterations) -> float:
    """One repeat of hpbandster's BOHB (its config generator, NATS's settings) through the facade, 300 iterations."""
    import warnings

    from hpbandster.optimizers.config_generators.bohb import BOHB

    warnings.filterwarnings("ignore")
    from test_search_fidelity import arch_str

    cg = BOHB(cs, num_samples=4, random_fraction=0.0, bandwidth_factor=3, min_bandwidth=0.3)

    class Job:
        def __init__(self, config, budget, loss):
            self.kwargs, self.result, self.exception, self.timestamps = ({"config": config, "budget": budget},
                                                                          {"loss": loss}, None, {})

    def evaluate(config, budget):
        arch = arch_str([[config[f"{i}<-{j}"] for j in range(i)] for i in range(1, 4)])
        accuracy = api.simulate_train_eval(arch, "ninapro", iepoch=int(budget) - 1, hp="12")[0]
        cg.new_result(Job(config, budget, 100 - accuracy))
        return 100 - accuracy

    start = time.perf_counter()
    hyperband_iterations(300, lambda budget: (dict(cg.get_config(budget)[0]), {}), evaluate)
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
