"""`nb360 search` on a table: one tabular method, or every one (`--method all`) into one plot and one table."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any


def run_dir_for(args: argparse.Namespace, task: str) -> Path:
    """The run directory: --out, else runs/<method>-<task>-<time>."""
    if args.out:
        return Path(args.out)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{args.method}-{task}-{stamp}"


def check_fresh(run_dir: Path, resumable: bool = True) -> None:
    """Refuse a non-empty run directory."""
    from ..errors import InputError

    if run_dir.exists() and any(run_dir.iterdir()):
        how = "(or --resume it)" if resumable else "(tabular searches take seconds and are not resumed)"
        raise InputError(f"run directory {run_dir} exists and is not empty: choose another --out {how}")


def progress_bar(enabled: bool, desc: str) -> tuple[Any, Any]:
    """A tqdm bar in permille and its update(fraction) callback (None, None when disabled)."""
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=desc, unit="‰", dynamic_ncols=True, file=sys.stderr)

    def update(fraction: float) -> None:
        target = int(fraction * 1000)
        if target > bar.n:
            bar.update(target - bar.n)

    return bar, update


def method_options(method: str, args: argparse.Namespace) -> dict[str, Any]:
    """The options of `method` given on the command line (None: the protocol's default)."""
    options: dict[str, Any] = {"max_queries": args.max_queries}
    if method == "rea":
        options.update(population=args.population, sample_size=args.sample_size, cycles=args.cycles)
    elif method == "ls":
        options.update(num_init=args.num_init)
    elif method == "reinforce":
        options.update(learning_rate=args.learning_rate, ema_momentum=args.ema_momentum)
    elif method in ("hyperband", "sh", "bohb"):
        options.update(min_budget=args.min_budget, max_budget=args.max_budget, eta=args.eta, iterations=args.iterations)
        if method == "bohb":
            options.update(num_samples=args.num_samples, random_fraction=args.random_fraction,
                           bandwidth_factor=args.bandwidth_factor, min_bandwidth=args.min_bandwidth)
    return options


def run_tabular(args: argparse.Namespace) -> int:
    """Run one tabular method (or all of them) on --table and write the run directory."""
    from ..errors import InputError
    from ..search.tabular import ALGORITHMS, TabularProblem, budget_bounds, check_budget, get_protocol
    from ..search.tabular import run as run_tabular_method
    from ..search.tabular.output import comparison_markdown, comparison_rows, save_comparison, save_result
    from ..table import Table

    if not args.table:
        from ..table.embedded import embedded_table_path

        # as `nb360 run` does: the table that ships with nb360, so a first search needs no download
        args.table = str(embedded_table_path())
        print(f"no --table: searching the embedded Darcy Flow table {args.table} (generated data; "
              "nb360/resources/README.md)", file=sys.stderr)
    protocol = get_protocol(args.protocol)
    methods = list(ALGORITHMS) if args.method == "all" else [args.method]
    if args.budget is None and args.max_queries is None and any(budget_bounds(m, protocol) for m in methods):
        raise InputError("give --budget SECONDS (simulated time per repeat) and/or --max-queries N")
    table = Table.open(args.table)
    if args.task is None and len(table.tasks) > 1:
        raise InputError(f"{args.table} holds several tasks ({', '.join(table.tasks)}): choose one with --task")
    problem = TabularProblem.from_table(table, task=args.task, search_hp=args.search_hp,
                                        search_epoch=args.search_epoch, search_metric=args.search_metric,
                                        final_table=args.final_table, final_task=args.final_task,
                                        final_hp=args.final_hp, final_metric=args.final_metric)
    if args.budget is not None and args.max_queries is None and any(budget_bounds(m, protocol) for m in methods):
        check_budget(problem, args.budget)
    run_dir = run_dir_for(args, problem.task)
    check_fresh(run_dir, resumable=False)
    results = []
    for method in methods:
        bar, update = progress_bar(not args.no_progress, f"{method} × {args.repeats}")
        try:
            result = run_tabular_method(method, problem, args.budget, args.repeats, args.seed, protocol=protocol,
                                        progress=update, **method_options(method, args))
        finally:
            if bar is not None:
                bar.close()
        save_result(result, run_dir / method if args.method == "all" else run_dir,
                    plots=not args.no_plots and args.method != "all", command=sys.argv)
        results.append(result)
    if args.method == "all":
        save_comparison(results, run_dir, budget=args.budget, plots=not args.no_plots)
        rows = comparison_rows(results)
        if args.json:
            print(json.dumps({"run_dir": str(run_dir), "protocol": protocol.name, "methods": rows}, indent=2))
        else:
            print(f"every tabular method on {problem.task} (protocol {protocol.name}, {args.repeats} repeats, search "
                  f"hp {problem.search_hp}; {problem.final_metric} at hp {problem.final_hp}{final_rule(problem, protocol)}):")
            print(comparison_markdown(rows))
            print(f"run directory: {run_dir} (plot: plots/comparison.png; per method: {run_dir}/<method>/)")
        return 0
    _print_one(args, problem, results[0], run_dir, protocol.name, final_rule(problem, protocol))
    return 0


def final_rule(problem: Any, protocol: Any) -> str:
    """How the final metric of a returned arch is read, when the table records several seeds ('' for one)."""
    seeds = len((problem.final_table or problem.table).seeds(problem.final_hp, problem.final_task))
    if seeds < 2:
        return ""
    if protocol.final_seed == "random":
        # a reader comparing with the table's best seed mean must know a single seed's luck is in these figures
        return (f"; one of its {seeds} seeds drawn per returned arch, as NAS-Bench-360's scripts read it; "
                "--protocol nb201 and `nb360 run` report the seed mean")
    return f"; the mean over its {seeds} seeds"


def _print_one(args: argparse.Namespace, problem: Any, result: Any, run_dir: Path, protocol: str,
               rule: str = "") -> None:
    summary = result.summary()
    if args.json:
        print(json.dumps({"run_dir": str(run_dir), "protocol": protocol, **summary}, indent=2))
        return
    q = summary["final_quantiles"]
    stops = result.config.get("stops", "")
    if stops.startswith("after"):
        budget = f"{result.config['iterations_run']} iterations (the budget stops nothing under protocol {protocol})"
    elif args.budget is not None:
        budget = f"budget {args.budget:g} s simulated"
    else:
        budget = f"{args.max_queries} queries"
    print(f"{args.method} on {problem.task} ({args.repeats} repeats, {budget}, search hp {problem.search_hp}, "
          f"protocol {protocol}): {problem.final_metric} (hp {problem.final_hp}{rule}) of the final incumbent "
          f"{summary['final_mean']:.4g} ± {summary['final_std']:.3g} std over repeats (median {q['0.5']:.4g}); "
          f"{summary['queries_mean']:.1f} queries per repeat")
    top = summary["most_found"][0]
    if top["repeats"] > 1:
        print(f"most often found: {top['arch_str']} (index {top['arch']}, by {top['repeats']} of {args.repeats} "
              "repeats)")
    elif args.repeats == 1:
        print(f"found: {top['arch_str']} (index {top['arch']})")
    else:
        print("every repeat ended on a different architecture (all of them: genotype.json)")
    print(f"run directory: {run_dir}")
