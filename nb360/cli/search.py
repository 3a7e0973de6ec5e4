"""`nb360 search`: tabular search on a table, or weight-sharing search (DARTS, PC-DARTS, GAEA, E2RNAS) on a task."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import BATCH, COUNT, EPOCHS, REPEATS, SEED, THREADS, WIDTH, add_common_options, device_arg
from .search_tabular import check_fresh, run_dir_for, run_tabular

_DESCRIPTION = """\
Run a search method and write a run directory (default runs/<method>-<task>-<time>/).

Tabular methods (rs, rea, ls, reinforce, hyperband, sh, bohb; `--method all` runs every one into
one plot and one table) query an nb360 table with NATS-Bench's simulated time: each query is
charged the recorded train time up to the queried epoch plus the evaluation time, against --budget
simulated seconds; --repeats independent runs are vectorised. By default they search the 12-epoch
fidelity (as NAS-Bench-360's runs) and report the incumbent's 200-epoch test metric.
--protocol nb360 (default) follows NAS-Bench-360's scripts (rtu715/NAS-Bench-360@200d40c
precompute/ninapro, i.e. AutoDL-Projects' exps/NATS-algos) exactly; nb201 is the older rule set:
{protocols}
Sources, file and line, for each rule: docs/search-protocols.md. Example (NAS-Bench-360's NinaPro
setting: 40 s, 500 repeats):
  nb360 search --method all --table ninapro.h5 --budget 40 --repeats 500

Weight-sharing methods (darts, pcdarts, gaea, e2rnas, gdas, setn, enas, random-ws) train a supernet on a task's search split
with the task's loss, checkpoint every epoch and resume with --resume RUN_DIR. E2RNAS's
upper-level objectives are chosen with --objectives. --space picks the search space:
  nb201  the NB201 supernet (default; weights on train, architecture on val); the found arch is an
         NB201 arch string with its table index;
  darts  the DARTS cell space (8 cells, C=16, the train split halved for weights and architecture,
         each task's NAS-Bench-360 batch size); the found architecture is a DARTS genotype, to be
         retrained with `nb360 evaluate --genotype`. pcdarts = partial channels K=4 + edge
         normalisation, 15 warm-up epochs; gaea = GAEA PC-DARTS (exponentiated gradient on op and
         edge weights, NAS-Bench-360's "DARTS / GAEA" row); e2rnas = E2RNAS's setting (second order).
Examples:
  nb360 search --method e2rnas --task ninapro --data-root data --objectives acc,adv,size
  nb360 search --space darts --method gaea --task ninapro --data-root data
  nb360 search --space darts --method darts --second-order --task cifar100 --data-root data
GDAS, SETN, ENAS and random-ws (NB201 space) take the settings NAS-Bench-360 ran them with (AutoDL
NATS-algos search-cell.py, rtu715/NAS-Bench-360@34eae45 precompute/ninapro/algo.sh L13-23): 100
epochs, batch 64, SGD 0.025 -> 0.001 nesterov, wd 5e-4, no gradient clipping, BN without affine or
running statistics, weight step before the architecture step, Adam(alpha) 3e-4 (ENAS 1e-3, eps 1e-3,
wd 0), GDAS tau 10 -> 0.1, 100 candidates scored on validation. Deviation: NATS's own run-all.sh
uses 200 epochs. Example:
  nb360 search --method gdas --task ninapro --data-root data
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `search` subcommand."""
    from ..search import METHODS
    from ..search.tabular.protocol import differences

    parser = subparsers.add_parser("search", help="run a NAS method on a table (simulated) or on a task (supernet)",
                                   description=_DESCRIPTION.replace("{protocols}", differences(markdown=False)),
                                   epilog=e2rnas_deviations(),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    tab = ", ".join(m.name for m in METHODS.values() if m.kind == "tabular")
    sup = ", ".join(m.name for m in METHODS.values() if m.kind == "supernet")
    parser.add_argument("--method", choices=[*METHODS, "all"], metavar="METHOD",
                        help=f"tabular: {tab}, or all (every tabular method, one plot and one table); "
                             f"weight-sharing: {sup}")
    parser.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    parser.add_argument("--out", metavar="DIR", help="run directory (default runs/<method>-<task>-<time>)")
    parser.add_argument("--no-plots", action="store_true", help="do not draw plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the result summary as JSON")

    g = tabular = parser.add_argument_group("tabular search")
    g.add_argument("--table", metavar="PATH",
                   help="nb360 table (.h5) to search (default: the embedded Darcy Flow table nb360 run searches)")
    g.add_argument("--protocol", choices=["nb360", "nb201"], default="nb360",
                   help="rules and hyper-parameters: nb360 (default; NAS-Bench-360's and NATS's scripts exactly) or "
                        "nb201 (the older NAS-Bench-201 rules); see the table above")
    g.add_argument("--budget", type=float, metavar="SECONDS", help="simulated seconds per repeat")
    g.add_argument("--max-queries", type=COUNT, metavar="N", help="queries per repeat (alone, or with --budget)")
    g.add_argument("--repeats", type=REPEATS, default=1, metavar="N", help="independent repeats (default 1)")
    g.add_argument("--task", metavar="NAME",
                   help="tabular: the table's task (dataset) when it holds several; weight-sharing: the task to "
                        "search on (see `nb360 tasks list`)")
    g.add_argument("--search-hp", metavar="HP", help="fidelity searched (default '12' if recorded, else the highest)")
    g.add_argument("--search-epoch", type=int, default=-1, metavar="E",
                   help="epoch queried, 0-based (default -1: the last of the search fidelity)")
    g.add_argument("--search-metric", metavar="NAME",
                   help="search signal (default <validation split>-accuracy, e.g. x-valid-accuracy)")
    g.add_argument("--final-table", metavar="PATH", help="table holding the final fidelity (default --table)")
    g.add_argument("--final-task", metavar="NAME", help="task of the final metric (default the search task)")
    g.add_argument("--final-hp", metavar="HP", help="final fidelity (default the highest, e.g. '200')")
    g.add_argument("--final-metric", metavar="NAME",
                   help="reported metric of the incumbent (default x-test-accuracy, else ori-test-accuracy)")
    g.add_argument("--population", type=COUNT, default=10, help="REA population (default 10)")
    g.add_argument("--sample-size", type=COUNT, default=3, help="REA tournament size (default 3)")
    g.add_argument("--cycles", type=COUNT, help="REA: stop after this many cycles too (default: budget only)")
    g.add_argument("--num-init", type=COUNT, default=10, help="LS: random initial archs (default 10)")
    g.add_argument("--learning-rate", type=float,
                   help="REINFORCE Adam learning rate (default: nb360 0.01 as algo.sh L3; nb201 0.5)")
    g.add_argument("--ema-momentum", type=float, default=0.9, help="REINFORCE baseline momentum (default 0.9)")
    g.add_argument("--min-budget", type=float, default=1.0, help="Hyperband/SH/BOHB: smallest budget in epochs (1)")
    g.add_argument("--max-budget", type=float, help="Hyperband/SH/BOHB: largest budget in epochs (default: all)")
    g.add_argument("--eta", type=float, default=3.0, help="Hyperband/SH/BOHB: reduction factor (default 3)")
    g.add_argument("--iterations", type=COUNT,
                   help="Hyperband/SH/BOHB iterations (default: nb360 300, NAS-Bench-360's --n_iters, whatever the "
                        "time used; nb201: until the budget is spent)")
    g.add_argument("--num-samples", type=COUNT, default=4,
                   help="BOHB: candidates per proposal (default 4, algo.sh L9; hpbandster's own default is 64)")
    g.add_argument("--random-fraction", type=float, default=0.0,
                   help="BOHB: share of uniformly random proposals (default 0, algo.sh L9)")
    g.add_argument("--bandwidth-factor", type=float, default=3.0, help="BOHB: bandwidth factor (default 3)")
    g.add_argument("--min-bandwidth", type=float, default=0.3, help="BOHB: smallest KDE bandwidth (default 0.3)")

    g = supernet = parser.add_argument_group("weight-sharing search")
    g.add_argument("--space", choices=["nb201", "darts"],
                   help="search space: nb201 (the NB201 supernet, default) or darts (the DARTS cell space)")
    g.add_argument("--data-root", metavar="DIR", help="data root holding <task>/ (see `nb360 data download`)")
    g.add_argument("--objectives", metavar="LIST",
                   help="E2RNAS upper-level objectives, comma-separated from acc, adv, size, flops "
                        "(default acc,adv,size)")
    g.add_argument("--no-mgda", action="store_true", help="E2RNAS ablation: equal weights instead of MGDA")
    g.add_argument("--mgda-solver", choices=["fw", "pgd"], help="min-norm solver for 3+ objectives (default fw)")
    g.add_argument("--grad-norm", choices=["l2", "loss", "loss+", "none"], help="gradient normalisation (l2)")
    g.add_argument("--eps", type=float, help="adversarial ε (default: the task card's, 2/255 in pixels on the image "
                                              "tasks as E2RNAS)")
    g.add_argument("--eps-space", choices=["card", "pixel", "normalized"],
                   help="units of ε: the card's [robustness] unit (default; `nb360 tasks show TASK`), [0,1] pixels "
                        "through the loader's mean/std, or the normalised inputs the network sees")
    g.add_argument("--size-constraint", choices=["abs", "min", "max", "none"], help="size constraint form (abs)")
    g.add_argument("--size-proxy", choices=["expected", "supernet"],
                   help="size objective: expected params of the evaluation network (default) or E2RNAS's weighted "
                        "supernet sum with target 3 in the DARTS space (the authors')")
    g.add_argument("--size-target", type=float, help="size target in units of --size-scale (default: midpoint)")
    g.add_argument("--size-scale", type=float, help="size unit in parameters (default 1e5)")
    g.add_argument("--flops-target", type=float, help="FLOPs target in units of --flops-scale (default midpoint)")
    g.add_argument("--flops-scale", type=float, help="FLOPs unit (default 1e8)")
    g.add_argument("--epochs", type=EPOCHS, help="search epochs (NB201: DARTS/E2RNAS 50, GAEA 25; DARTS space 50)")
    g.add_argument("--batch-size", type=BATCH, help="batch size (NB201: 64; DARTS space: the task's NB360 value for "
                   "pcdarts/gaea, at most 64 for darts/e2rnas)")
    g.add_argument("--C", "--channels", type=WIDTH, dest="C",
                   help="supernet channels (NB201: DARTS/E2RNAS 16, GAEA 24; DARTS 16)")
    g.add_argument("--N", "--cells", type=WIDTH, dest="N", help="NB201: cells per stage (default 5)")
    g.add_argument("--layers", type=WIDTH, help="DARTS space: search cells (default 8)")
    g.add_argument("--partial-channels", type=COUNT, metavar="K",
                   help="DARTS space: mixed ops see C/K channels (PC-DARTS, GAEA: 4; DARTS, E2RNAS: 1)")
    g.add_argument("--edge-weights", action=argparse.BooleanOptionalAction, default=None,
                   help="DARTS space: edge normalisation (PC-DARTS, GAEA: on)")
    g.add_argument("--warmup-epochs", type=int, help="epochs before the first architecture step (PC-DARTS 15)")
    g.add_argument("--lr", type=float, help="weight learning rate (default 0.025, cosine to 0.001)")
    g.add_argument("--arch-lr", type=float, help="architecture learning rate (DARTS/E2RNAS 3e-4, GAEA 0.1)")
    g.add_argument("--weight-decay", type=float, help="weight decay (DARTS/E2RNAS 5e-4, GAEA 3e-4)")
    g.add_argument("--second-order", action=argparse.BooleanOptionalAction, default=None,
                   help="DARTS/E2RNAS: unrolled second-order step (default: off for DARTS, on for E2RNAS as its "
                        "authors' --unrolled)")
    g.add_argument("--exclude-none", action=argparse.BooleanOptionalAction, default=None,
                   help="NB201: discretise without the 'none' op (GAEA default on, DARTS/E2RNAS off); GAEA: hold "
                        "'none' at 0 on the simplex (the DARTS space's rule always skips 'none')")
    g.add_argument("--arch-data", choices=["val", "train-half"], help="split for architecture steps (val)")
    g.add_argument("--lower-level", choices=["clean", "fgsm-rs"], help="weight training inputs (clean)")
    g.add_argument("--max-steps", type=COUNT, help="cap steps per epoch (smoke runs)")
    g.add_argument("--tau-max", type=float, help="GDAS: Gumbel temperature at the first epoch (default 10)")
    g.add_argument("--tau-min", type=float, help="GDAS: temperature at the last epoch (default 0.1)")
    g.add_argument("--eval-candidates", type=COUNT,
                   help="SETN/ENAS/random-ws: architectures scored on validation for the genotype (default 100)")
    g.add_argument("--eval-batch-size", type=BATCH,
                   help="SETN/ENAS/random-ws: validation batch for that scoring and ENAS's controller (default 512)")
    g.add_argument("--controller-steps", type=COUNT,
                   help="ENAS: controller updates per epoch, each averaging 20 samples (default 50)")
    g.add_argument("--compare-darts", action=argparse.BooleanOptionalAction, default=None,
                   help="E2RNAS: also run DARTS with the same settings for the trade-off plot (default on)")
    g.add_argument("--no-attacks", action="store_true", help="score the found arch clean only (no FGSM/PGD)")
    g.add_argument("--pgd-steps", type=COUNT, help="PGD steps when scoring the found arch (default 10)")
    g.add_argument("--loader-option", action="append", default=[], metavar="KEY=VALUE",
                   help="option for the task's data loader, e.g. source=generated (repeatable)")
    g.add_argument("--device", type=device_arg, help="cpu or cuda (default cpu)")
    g.add_argument("--threads", type=THREADS,
                   help="torch CPU threads (default: one per core; OpenMP waits sleep, see `nb360 evaluate --help`)")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue the search in RUN_DIR from its last checkpoint")
    g.add_argument("--stop-after", type=EPOCHS, metavar="EPOCHS", help="stop after this many epochs (resume later)")
    add_common_options(parser)
    # Options that only one kind of search reads (--task is shared): given to the other kind, they are refused.
    only = {kind: {a.dest: (a.option_strings[0], a.default) for a in group._group_actions if a.dest != "task"}
            for kind, group in (("tabular", tabular), ("supernet", supernet))}
    parser.set_defaults(func=run, _options_only_for=only)


_run_dir = run_dir_for
_check_fresh = check_fresh


def e2rnas_deviations() -> str:
    """The help epilog: E2RNAS's defaults against the authors' code, each deviation with its reason."""
    import textwrap

    from ..search.e2rnas_deviations import AUTHORS_DEVIATIONS

    lines = ["E2RNAS defaults equal the authors' code (yuezhixiong/NAS-Benchmark) except, with the reason and the",
             "option that restores theirs (docs/e2rnas.md):"]
    for d in AUTHORS_DEVIATIONS:
        text = (f"{d.setting}: nb360 {d.nb360}; authors {d.authors}. Why: {d.why}."
                + (f" Theirs: {d.theirs}." if d.theirs else ""))
        lines += textwrap.wrap(text, 100, initial_indent="  - ", subsequent_indent="    ")
    return "\n".join(lines)



def run(args: argparse.Namespace) -> int:
    """Dispatch to the tabular or the weight-sharing search."""
    from ..errors import InputError
    from ..search import get_method

    if args.resume:
        return _run_supernet(args)
    if not args.method:
        raise InputError("choose a method with --method (see `nb360 search --help`)")
    kind = "tabular" if args.method == "all" else get_method(args.method).kind
    other = "supernet" if kind == "tabular" else "tabular"
    ignored = [flag for dest, (flag, default) in args._options_only_for[other].items()
               if getattr(args, dest) != default]
    if ignored:
        what = "weight-sharing" if other == "supernet" else "tabular"
        raise InputError(f"{', '.join(ignored)} only appl{'ies' if len(ignored) == 1 else 'y'} to {what} searches, "
                         f"not to {args.method}: drop {'it' if len(ignored) == 1 else 'them'} (see `nb360 search "
                         "--help` for each kind's options)")
    return run_tabular(args) if kind == "tabular" else _run_supernet(args)


def _parse_loader_options(items: list[str]) -> dict[str, Any]:
    from ..errors import InputError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--loader-option takes KEY=VALUE, got {item!r}")
        out[key] = int(value) if value.isdigit() else value
    return out


def _run_supernet(args: argparse.Namespace) -> int:
    from ..devices import require_available
    from ..errors import InputError
    from ..search.supernet import SearchConfig, default_config, run_search

    if args.device is not None:
        require_available(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.resume:
        run_dir = Path(args.resume)
        saved = run_dir / "config.json"
        if not saved.exists():
            raise InputError(f"{run_dir} holds no config.json: it is not a weight-sharing run directory")
        data = json.loads(saved.read_text(encoding="utf-8"))
        from ..search.tabular import ALGORITHMS as TABULAR

        if data.get("method") in TABULAR:
            raise InputError(f"{run_dir} holds a tabular search ({data['method']}): only weight-sharing searches "
                             "resume; a tabular one takes seconds, rerun it with a new --out")
        data.pop("nb360_version", None)
        for key in ("data_root", "device"):
            value = getattr(args, key)
            if value is not None:
                data[key] = value
        config = SearchConfig.from_dict(data).validate()
    else:
        if not args.task:
            raise InputError(f"{args.method} searches on a task: pass --task NAME (see `nb360 tasks list`)")
        objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip()) if args.objectives else None
        if objectives is not None and args.method != "e2rnas":
            raise InputError("--objectives chooses E2RNAS's upper-level objectives; use --method e2rnas")
        compare = args.compare_darts
        if compare is None:
            compare = args.method == "e2rnas"
        config = default_config(
            args.method, args.task, space=args.space, data_root=args.data_root, layers=args.layers,
            partial_channels=args.partial_channels, edge_weights=args.edge_weights, warmup_epochs=args.warmup_epochs,
            seed=args.seed, objectives=objectives,
            mgda=False if args.no_mgda else None, mgda_solver=args.mgda_solver, grad_norm=args.grad_norm,
            eps=args.eps, eps_space=args.eps_space, size_constraint=args.size_constraint, size_proxy=args.size_proxy,
            size_target=args.size_target, size_scale=args.size_scale, flops_target=args.flops_target,
            flops_scale=args.flops_scale, epochs=args.epochs, batch_size=args.batch_size, C=args.C, N=args.N,
            lr=args.lr, arch_lr=args.arch_lr, weight_decay=args.weight_decay,
            second_order=args.second_order, exclude_none=args.exclude_none,
            arch_data=args.arch_data, lower_level=args.lower_level, max_steps=args.max_steps,
            tau_max=args.tau_max, tau_min=args.tau_min, eval_candidates=args.eval_candidates,
            eval_batch_size=args.eval_batch_size, controller_steps=args.controller_steps,
            compare_darts=compare, eval_attacks=False if args.no_attacks else None, pgd_steps=args.pgd_steps,
            loader_options=_parse_loader_options(args.loader_option) or None, device=args.device)
        run_dir = _run_dir(args, args.task)
        _check_fresh(run_dir)
    result = run_search(config, run_dir, resume=bool(args.resume), stop_after=args.stop_after,
                        progress=not args.no_progress, plots=not args.no_plots)
    payload = {"run_dir": str(run_dir), "method": config.method, "task": config.task,
               "epochs_done": result.epochs_done, "finished": result.finished, "genotype": result.genotype,
               "arch_index": result.arch_index, "evaluation": result.evaluation}
    if args.json:
        print(json.dumps(payload, indent=2))
        return 0
    where = f" (index {result.arch_index})" if result.arch_index is not None else ""
    print(f"{config.method} on {config.task} ({config.space} space): {result.epochs_done}/{config.epochs} epochs; "
          f"genotype {result.genotype}{where}")
    if result.evaluation is not None:
        ev = result.evaluation
        scores = ", ".join(f"{kind} {json.dumps({k: round(v, 4) for k, v in s.items()})}"
                           for kind, s in ev["scores"].items())
        print(f"found arch ({ev['protocol']}; {ev['split']} split): {ev['params_M']:.4f} M params"
              f"{' of ' + ev['params_of'] if 'params_of' in ev else ''}; {scores}")
        if config.space == "darts":
            print(f"retrain it: nb360 evaluate --task {config.task} --genotype {run_dir / 'genotype.json'} "
                  "--data-root DIR")
    elif not result.finished:
        print(f"stopped after epoch {result.epochs_done}; continue with: nb360 search --resume {run_dir}")
    print(f"run directory: {run_dir}")
    return 0
