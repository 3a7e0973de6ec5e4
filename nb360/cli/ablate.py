"""`nb360 ablate`: E2RNAS over objective subsets × seeds, retrained and attacked; Pareto plot and λ trajectories."""

from __future__ import annotations

import argparse

from . import add_common_options, device_arg

_DESCRIPTION = """\
Run E2RNAS with each subset of its upper-level objectives ({acc}, {acc,adv}, {acc,size},
{acc,adv,size}; --flops adds {acc,adv,size,flops}) for every seed, retrain each found architecture
with the task's protocol (shortened to --retrain-epochs) and attack it on the test split with the
E2RNAS authors' FGSM and PGD. Writes OUT/ablation.json, OUT/REPORT.md and OUT/plots/: error vs
robust error vs parameters (Pareto plot, front marked, every seed a point) and the MGDA weights per
step. Every search and evaluation is its own resumable run directory under OUT; rerunning the same
command continues an interrupted ablation.

Without --data-root it runs on the embedded Darcy Flow default (the generated set `nb360 run` uses,
labelled a stand-in), in minutes on 2 CPU cores. Searches use the authors' settings (second order,
MGDA, the card's eps) at a small supernet (--channels, --cells) and --epochs.

Examples:
  nb360 ablate
  nb360 ablate --task ninapro --data-root data --seeds 0 1 2 --epochs 50 --retrain-epochs 0 --space darts
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `ablate` subcommand."""
    parser = subparsers.add_parser("ablate", help="E2RNAS objective ablation: subsets x seeds, Pareto plot",
                                   description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="darcyflow", help="task (default darcyflow: the embedded default)")
    parser.add_argument("--data-root", metavar="DIR", help="the task's data (default: the embedded Darcy Flow set)")
    parser.add_argument("--out", metavar="DIR", help="output directory (default runs/ablate-<task>)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds (default 0 1)")
    parser.add_argument("--subsets", metavar="LIST",
                        help="objective subsets separated by ';', e.g. 'acc;acc,adv' (default the four)")
    parser.add_argument("--flops", action="store_true", help="add the subset acc,adv,size,flops")
    parser.add_argument("--space", choices=("nb201", "darts"), default="nb201", help="search space (default nb201)")
    parser.add_argument("--epochs", type=int, default=2, help="search epochs (default 2; the authors' 50)")
    parser.add_argument("--channels", type=int, default=4, help="supernet C (default 4)")
    parser.add_argument("--cells", type=int, default=1, help="NB201 cells per stage N, or DARTS search cells")
    parser.add_argument("--batch-size", type=int, default=32, help="search batch size (default 32)")
    parser.add_argument("--first-order", action="store_true", help="first-order step (the authors: second order)")
    parser.add_argument("--retrain-epochs", type=int, default=10,
                        help="retraining epochs of each found architecture (default 10; 0: no retraining, the "
                             "searches' inherited-weights figures only)")
    parser.add_argument("--retrain-channels", type=int, default=4, help="C of the retrained network (default 4)")
    parser.add_argument("--retrain-cells", type=int, default=1, help="NB201 N of the retrained network (default 1)")
    parser.add_argument("--attacks", default="fgsm,pgd", help="attacks after retraining (default fgsm,pgd)")
    parser.add_argument("--attack-limit", type=int, metavar="N", help="attack only the first N test items")
    parser.add_argument("--device", default="cpu", type=device_arg, help="cpu or cuda (default cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ablation and say where the report is."""
    from ..ablation import FLOPS_SUBSET, SUBSETS, AblationConfig, run_ablation
    from ..errors import InputError
    from ..evaluate.attacks import parse_attacks

    subsets = SUBSETS
    if args.subsets:
        subsets = tuple(tuple(o.strip() for o in part.split(",") if o.strip()) for part in args.subsets.split(";")
                        if part.strip())
    if args.flops and FLOPS_SUBSET not in subsets:
        subsets = (*subsets, FLOPS_SUBSET)
    attacks = parse_attacks(args.attacks)
    if not attacks and args.retrain_epochs:
        raise InputError("the ablation needs at least one attack after retraining (robust error): e.g. --attacks pgd")
    cfg = AblationConfig(task=args.task, out=args.out or f"runs/ablate-{args.task}", data_root=args.data_root,
                         seeds=tuple(args.seeds), subsets=subsets, space=args.space, epochs=args.epochs,
                         channels=args.channels, cells=args.cells, batch_size=args.batch_size,
                         second_order=not args.first_order, retrain_epochs=args.retrain_epochs,
                         retrain_channels=args.retrain_channels, retrain_cells=args.retrain_cells,
                         attacks=attacks or (), attack_limit=args.attack_limit, device=args.device)
    report = run_ablation(cfg, progress=not args.no_progress)
    print(f"done: the report is {report}")
    return 0
