"""`nb360 suite`: methods × tasks × seeds, end to end, into one results directory for `nb360 report`."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

from . import BATCH, COUNT, EPOCHS, SEED, THREADS, WIDTH, add_common_options, device_arg

_DESCRIPTION = """\
Run search methods and baselines on tasks × seeds, each unit end to end with the task card's
protocol: search (on a table, or a weight-sharing search on the task's search split), retrain the
found architecture on train+val, score it on test. Baselines (wrn, wrn-asha, xgboost) have no
search phase of their own beyond ASHA's tuning. Every unit resumes where it stopped: rerun the same
command (or `nb360 suite --resume DIR`) after an interruption. Then `nb360 report DIR` writes the
methods × tasks table beside NAS-Bench-360's published rows, performance profiles, per-task
leaderboards and a self-contained HTML page.

Methods (`nb360 suite --list-methods`) come from nb360's registries:
  tabular       rs, rea, ls, reinforce, hyperband, sh, ... on an NB201 table of the task
                (--table TASK=PATH; darcyflow defaults to the embedded table); the found cell is
                retrained with `nb360 evaluate --arch`;
  weight-sharing  darts, pcdarts, gaea, e2rnas, ... as <method>-<space> (gaea-darts, darts-nb201);
                a method named without a space runs in --space (default darts: NAS-Bench-360's GAEA
                PC-DARTS row); the found genotype/cell is retrained;
  baselines     wrn (the card's backbone: WRN-16-4, the 1D ResNet on 1D tasks), wrn-asha (ASHA-tuned),
                xgboost.
Units that cannot run are recorded as skipped with the reason (a tabular method without a table,
XGBoost on PSICOV).

Defaults are the reference protocols (each card's retrain protocol, e.g. 200 epochs for the WRN and 150 for a
DARTS genotype; each method's search settings, e.g. 50 epochs; NAS-Bench-360's
ASHA trial counts, 100 XGBoost rounds). The --search-*, --eval-*, --asha-trials and --xgb-rounds
options shorten them for quick runs; the results then say so and the report keeps them apart
from the published numbers.

What differs from running each method alone (named here; the settings are in each unit's search/config.json):
  - a tabular method runs one repeat per seed (its incumbent is retrained), with a budget of about 20
    queries at the table's search fidelity unless --tabular-budget says otherwise (the main job's rule;
    NAS-Bench-360's precompute scripts set per-table budgets, which a table built elsewhere lacks);
  - E2RNAS runs without its DARTS comparison run and no search-time FGSM/PGD scoring of the
    inherited-weights architecture (neither enters the table: the retrained network's test score does).

On a Ray cluster (`--executor ray`, RAY_ADDRESS or --ray-address), every unit is one Ray task
asking for --threads CPUs and, with --device cuda, one GPU (wrn-asha units ask for nothing: their
ASHA trials are Ray actors that ask for CPUs/GPUs themselves). --unit-timeout cancels a unit that
runs too long (it is recorded as failed and resumes from its checkpoints on the next run).

Examples:
  nb360 suite --methods gaea wrn wrn-asha xgboost --tasks ninapro darcyflow ecg --data-root data
  nb360 suite --methods rea darts gaea e2rnas wrn wrn-asha xgboost --tasks ninapro darcyflow ecg \\
      --seeds 0 1 --data-root data --table ninapro=tables/ninapro.h5 --table ecg=tables/ecg.h5 \\
      --search-epochs 1 --search-channels 4 --search-cells 2 --eval-epochs 2 --eval-channels 4 \\
      --eval-cells 2 --asha-trials 3 --xgb-rounds 10 --out runs/small-grid
  nb360 suite --methods gaea wrn wrn-asha xgboost --tasks cifar100 ninapro ... --executor ray \\
      --device cuda --data-root /shared/data --out /shared/runs/nb360-table
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `suite` subcommand."""
    parser = subparsers.add_parser("suite", help="methods × tasks × seeds end to end, for a methods × tasks table",
                                   description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", metavar="M", help="methods to run (see --list-methods)")
    parser.add_argument("--tasks", nargs="+", metavar="T", help="tasks (see `nb360 tasks list`)")
    parser.add_argument("--seeds", nargs="+", type=SEED, default=[0, 1, 2], metavar="S", help="seeds (default 0 1 2)")
    parser.add_argument("--data-root", metavar="DIR", help="data root holding <task>/ for every task")
    parser.add_argument("--out", metavar="DIR", help="suite directory (default runs/suite-<time>)")
    parser.add_argument("--resume", metavar="DIR", help="continue the suite in DIR with its own settings")
    parser.add_argument("--space", choices=("nb201", "darts"), default="darts",
                        help="space of weight-sharing methods named without one (default darts)")
    parser.add_argument("--table", action="append", default=[], metavar="TASK=PATH",
                        help="NB201 table a tabular method searches for TASK (repeatable)")
    parser.add_argument("--device", type=device_arg, default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=THREADS, default=1, metavar="T",
                        help="torch CPU threads per unit, per ASHA trial and for XGBoost (default 1)")
    parser.add_argument("--loader-option", action="append", default=[], metavar="TASK:KEY=VALUE",
                        help="a task's data-loader option, e.g. darcyflow:source=generated (repeatable)")
    parser.add_argument("--list-methods", action="store_true", help="list the methods and exit")
    parser.add_argument("--no-progress", action="store_true", help="no per-epoch progress bars")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    short = parser.add_argument_group("shortened protocols (the results say so; the report keeps them apart)")
    short.add_argument("--search-epochs", type=EPOCHS, metavar="E", help="weight-sharing search epochs")
    short.add_argument("--search-channels", type=WIDTH, metavar="C", help="supernet channels")
    short.add_argument("--search-cells", type=COUNT, metavar="N", help="supernet cells (NB201: per stage; DARTS: layers)")
    short.add_argument("--search-batch-size", type=BATCH, metavar="B", help="search batch size")
    short.add_argument("--max-steps", type=COUNT, dest="search_max_steps", metavar="K", help="search steps per epoch")
    short.add_argument("--eval-epochs", type=EPOCHS, metavar="E", help="retrain epochs (also ASHA's longest trial)")
    short.add_argument("--eval-channels", type=int, metavar="C", help="retrained network channels (NB201 and DARTS)")
    short.add_argument("--eval-cells", type=int, metavar="N", help="retrained network cells (NB201 N; DARTS layers)")
    short.add_argument("--asha-trials", type=int, metavar="N", help="ASHA trials per seed")
    short.add_argument("--asha-concurrency", type=int, metavar="N", help="ASHA trials at once (default 4)")
    short.add_argument("--xgb-rounds", type=int, metavar="N", help="XGBoost boosting rounds (default 100)")
    short.add_argument("--tabular-budget", type=float, metavar="S", help="tabular search budget, simulated seconds")
    where = parser.add_argument_group("where units run")
    where.add_argument("--executor", choices=("local", "ray"), default="local", help="local (default) or ray")
    where.add_argument("--workers", type=int, default=1, metavar="W",
                       help="local: units at once in worker processes; ray without a cluster: local CPUs")
    where.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join (default $RAY_ADDRESS)")
    where.add_argument("--unit-timeout", type=float, metavar="S", help="ray: cancel a unit running over S seconds")
    where.add_argument("--retries", type=int, default=1, metavar="N", help="ray: re-runs of a unit whose worker died")
    add_common_options(parser)
    parser.set_defaults(func=run)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    from ..errors import InputError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InputError(f"{flag} takes TASK=VALUE, got {item!r}")
        out[key] = value
    return out


def _loader_options(items: list[str]) -> dict[str, dict[str, Any]]:
    from ..errors import InputError

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        task, sep, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if not sep or not eq or not task or not key:
            raise InputError(f"--loader-option takes TASK:KEY=VALUE, got {item!r}")
        out.setdefault(task, {})[key] = int(value) if value.isdigit() else value
    return out


def _list_methods() -> int:
    from ..suite import available_methods

    for m in available_methods().values():
        row = f"  [published row: {' / '.join(m.published)}]" if m.published else ""
        print(f"{m.name:<18} {m.kind:<9} {m.label}{row}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the suite and print one line per unit and a summary."""
    from ..errors import InputError
    from ..suite import SuiteSpec, run_suite, spec_from_json

    if args.list_methods:
        return _list_methods()
    if args.resume:
        if not (Path(args.resume) / "suite.json").exists():
            raise InputError(f"{args.resume} is not a suite directory (no suite.json)")
        spec = spec_from_json(args.resume)
        out = Path(args.resume)
        for name in ("executor", "workers", "ray_address", "unit_timeout", "retries"):
            default = {"executor": "local", "workers": 1, "retries": 1}.get(name)
            if getattr(args, name) != default:
                setattr(spec, name, getattr(args, name))
    else:
        if not args.methods or not args.tasks or not args.data_root:
            raise InputError("give --methods, --tasks and --data-root (or --resume DIR; --list-methods lists methods)")
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(args.out) if args.out else Path("runs") / f"suite-{stamp}"
        spec = SuiteSpec(methods=tuple(args.methods), tasks=tuple(args.tasks), seeds=tuple(args.seeds),
                         data_root=args.data_root, space=args.space, tables=_pairs(args.table, "--table"),
                         device=args.device, threads=args.threads, loader_options=_loader_options(args.loader_option),
                         search_epochs=args.search_epochs, search_channels=args.search_channels,
                         search_cells=args.search_cells, search_batch_size=args.search_batch_size,
                         search_max_steps=args.search_max_steps, eval_epochs=args.eval_epochs,
                         eval_channels=args.eval_channels, eval_cells=args.eval_cells, asha_trials=args.asha_trials,
                         asha_concurrency=args.asha_concurrency, xgb_rounds=args.xgb_rounds,
                         tabular_budget=args.tabular_budget, executor=args.executor, workers=args.workers,
                         ray_address=args.ray_address, unit_timeout=args.unit_timeout, retries=args.retries)
    say = (lambda line: None) if args.json else (lambda line: print(line, flush=True))
    try:
        summary = run_suite(spec, out, progress=not args.no_progress, say=say)
    except KeyboardInterrupt:
        print(f"nb360: interrupted; every finished unit and checkpoint is kept in {out}: rerun with --resume {out}",
              file=sys.stderr)
        raise
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['done']} done, {summary['skipped']} skipped, {summary['failed']} failed of {summary['units']} "
              f"units ({summary['ran']} run now in {summary['seconds']:.0f} s); results: {out / 'results.json'}")
        print(f"report: nb360 report {out}")
    if summary["failed"]:
        for line in summary["failed_units"]:
            print(f"failed: {line}", file=sys.stderr)
        print(f"nb360: {summary['failed']} unit(s) failed (their unit.json holds the error); rerun with --resume {out} "
              "to retry them", file=sys.stderr)
        return 1
    return 0
