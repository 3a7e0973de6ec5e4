"""`nb360 run`: the main job on the embedded default (generated Darcy Flow and the shipped table)."""

from __future__ import annotations

import argparse

from . import EPOCHS, REPEATS, SEED, WIDTH, add_common_options, bounded_int, device_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `run` subcommand."""
    parser = subparsers.add_parser(
        "run", help="the main job: search and evaluate on the embedded Darcy Flow default",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The main job, needing no download: generate a small Darcy Flow set, run tabular search (REA "
                    "vs random search) on the precomputed table shipped with nb360, run a short E2RNAS search on the "
                    "task, retrain the architectures found against the dense WRN baseline, and write REPORT.md.\n\n"
                    "The tabular searches follow NAS-Bench-360's rules (`nb360 search --protocol nb360`) with one "
                    "deviation: the final metric of an architecture found is its mean over the table's seeds (NATS's "
                    "is_random=False), not one random seed's as NAS-Bench-360's scripts read it, so REA and random "
                    "search are compared on seed means rather than on one seed's luck.\n\n"
                    "With no options it takes about a minute and a half on 2 CPU cores. Rerunning the same command "
                    "continues an interrupted job. Scale it up with --eval-epochs 0 (the task card's full protocol), more "
                    "--eval-seeds, --search-epochs, --search-channels/--search-cells and --device cuda.")
    parser.add_argument("--out", default="runs/main", help="run directory (default runs/main)")
    parser.add_argument("--data-root", help="Darcy Flow data directory (default OUT/data; generated when missing)")
    parser.add_argument("--table", help="an nb360 table to search (default: the embedded table)")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the searches (default 0)")
    parser.add_argument("--budget", type=float, help="simulated seconds per tabular repeat (default: ~20 queries)")
    parser.add_argument("--repeats", type=REPEATS, default=100, help="tabular search repeats (default 100)")
    parser.add_argument("--search-epochs", type=EPOCHS, default=2, help="E2RNAS epochs (default 2)")
    parser.add_argument("--search-channels", type=WIDTH, default=4, help="supernet C (default 4)")
    parser.add_argument("--search-cells", type=WIDTH, default=1, help="supernet N (default 1)")
    parser.add_argument("--objectives", default="acc,adv,size", help="E2RNAS objectives (default acc,adv,size)")
    parser.add_argument("--eval-epochs", type=bounded_int(0, 100_000, "an epoch count"), default=10,
                        help="retraining epochs (default 10; 0 = the task card's full protocol)")
    parser.add_argument("--eval-seeds", type=SEED, nargs="+", default=[0], help="retraining seeds (default 0)")
    parser.add_argument("--eval-channels", type=WIDTH, default=4, help="C of the retrained NB201 networks (default 4)")
    parser.add_argument("--eval-cells", type=WIDTH, default=1, help="N of the retrained NB201 networks (default 1)")
    parser.add_argument("--device", default="cpu", type=device_arg, help="cpu or cuda (default cpu)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the main job and say where the report is."""
    from ..errors import InputError
    from ..main_job import MainJobConfig, run_main_job

    if args.eval_epochs < 0:
        raise InputError(f"--eval-epochs must be >= 0 (0: the task card's full protocol), got {args.eval_epochs}")
    cfg = MainJobConfig(out=args.out, data_root=args.data_root, table=args.table, seed=args.seed, budget=args.budget,
                        repeats=args.repeats, search_epochs=args.search_epochs, search_channels=args.search_channels,
                        search_cells=args.search_cells, objectives=tuple(o for o in args.objectives.split(",") if o),
                        eval_epochs=args.eval_epochs or None, eval_seeds=tuple(args.eval_seeds),
                        eval_channels=args.eval_channels, eval_cells=args.eval_cells, device=args.device)
    report = run_main_job(cfg)
    print(f"done: the report is {report}")
    return 0
