"""`nb360 table`: import released NATS-Bench / NAS-Bench-360 tables, show what a table holds, query it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import add_common_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `table` subcommand group."""
    parser = subparsers.add_parser(
        "table", help="import, inspect and query precomputed NB201 tables",
        description="Precomputed NAS-Bench-201 tables in nb360's memory-mapped HDF5 format (docs/table-format.md).")
    add_common_options(parser)
    sub = parser.add_subparsers(title="table commands", metavar="ACTION", required=True)

    p = sub.add_parser("import", help="convert a released NATS-Bench / NAS-Bench-360 topology table",
                       description="Convert a released topology table (the single NATS-tss-*.pickle.pbz2 file or a "
                                   "NATS-tss-*-simple directory) into an nb360 table. Needs no nats_bench; unpickles "
                                   "with a restricted unpickler that refuses anything but the released files' types.")
    p.add_argument("source", help="the .pickle.pbz2 file (or decompressed .pickle) or the -simple directory")
    p.add_argument("-o", "--output", required=True, help="the nb360 table to write (.h5)")
    p.add_argument("--tasks", nargs="+", metavar="TASK",
                   help="import only these datasets (e.g. cifar10-valid ninapro); default: all")
    add_common_options(p)
    p.set_defaults(func=run_import)

    p = sub.add_parser("info", help="show a table's schema, provenance, runs and protocols",
                       description="Show the schema version, provenance (source file and sha256, nb360 version, "
                                   "creation time) and every run group (task, fidelity hp, seed, epochs, metrics, "
                                   "training protocol).")
    p.add_argument("path", help="an nb360 table (.h5)")
    p.add_argument("--verify", action="store_true", help="also check every dataset against its recorded sha256")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_common_options(p)
    p.set_defaults(func=run_info)

    p = sub.add_parser("query", help="look up an architecture",
                       description="Look up one architecture (an index, or an arch string such as "
                                   "'|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                                   "skip_connect~2|') in a table: one metric, or every metric and cost at an epoch.")
    p.add_argument("path", help="an nb360 table (.h5)")
    p.add_argument("arch", help="arch index or arch string")
    p.add_argument("--metric", help="curve metric, e.g. ori-test-accuracy (default: all metrics and costs)")
    p.add_argument("--epoch", type=int, default=-1, help="epoch, 0-based; -1 (default) is the last")
    p.add_argument("--hp", default="200", help="fidelity: epochs of the training protocol (default: 200)")
    p.add_argument("--task", help="task (dataset) name; needed when the table holds several")
    p.add_argument("--seed", type=int, help="one seed (default: the mean over the recorded seeds)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_common_options(p)
    p.set_defaults(func=run_query)


def _progress(iterable: Any, total: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, unit="arch", desc="importing", disable=not sys.stderr.isatty())


def run_import(args: argparse.Namespace) -> int:
    """Convert a released table and print what was written."""
    from ..table import Table
    from ..table.importer import import_nats

    out = import_nats(args.source, args.output, tasks=args.tasks, progress=_progress)
    table = Table.open(out)
    print(f"wrote {out} ({table.info()['size_bytes'] / 1e6:.1f} MB): {len(table.runs)} run groups, tasks "
          f"{', '.join(table.tasks)}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print a table's facts."""
    from ..table import Table

    table = Table.open(args.path)
    if args.verify:
        table.verify()
    info = table.info()
    if args.json:
        info["verified"] = bool(args.verify)
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: nb360 table, schema version {info['schema_version']}, space {info['space']} "
          f"({info['num_archs']} archs), {info['size_bytes'] / 1e6:.1f} MB")
    print(f"created {info['created']} by nb360 {info['nb360_version']}" + ("; all datasets verified" if args.verify
                                                                           else ""))
    for key, value in (info.get("provenance") or {}).items():
        print(f"  {key}: {value}")
    print("runs:")
    for r in info["runs"]:
        proto = r["protocol"]
        network = proto.get("network") or {}
        print(f"  {r['task']:<16} hp {r['hp']:>4}  seed {r['seed']:<5} {r['epochs']:>4} epochs  "
              f"{r['archs_recorded']:>6} archs  times: {r['time_kind']}")
        print(f"      metrics: {', '.join(r['metrics'])}")
        print(f"      scalars: {', '.join(r['scalars']) or '-'}; validation split: {r['valid_split']}")
        optim = ", ".join(f"{k}={proto[k]}" for k in ("optimizer", "lr", "momentum", "nesterov", "weight_decay",
                                                        "schedule", "batch_size") if proto.get(k) is not None)
        if optim or network:
            print(f"      protocol: {optim}; network C={network.get('channel')} N={network.get('num_cells')}")
        if proto.get("source"):
            print(f"      protocol source: {proto['source']}")
    return 0


def run_query(args: argparse.Namespace) -> int:
    """Print one arch's values."""
    from ..errors import MissingValueError
    from ..space import nb201
    from ..table import Table

    table = Table.open(args.path)
    arch: Any = int(args.arch) if args.arch.lstrip("-").isdigit() else args.arch
    index = table.arch_index(arch)
    task = table.task_name(args.task)
    seeds = [args.seed] if args.seed is not None else table.seeds(args.hp, task)
    metrics = [args.metric] if args.metric else list(table.metrics(args.hp, task))
    epochs = table.epochs(args.hp, task)
    epoch = args.epoch + epochs if args.epoch < 0 else args.epoch
    values: dict[str, float | None] = {}
    for metric in metrics:
        try:
            values[metric] = table.query(index, metric, args.epoch, seed=args.seed, hp=args.hp, task=task)
        except MissingValueError:
            if args.metric:
                raise
            values[metric] = None
    result: dict[str, Any] = {"index": index, "arch": nb201.arch_str(index) if table.space == "nb201" else None,
                              "task": task, "hp": args.hp, "seeds": seeds, "epoch": epoch, "values": values}
    if not args.metric:
        result["cost"] = table.cost(index, hp=args.hp, task=task, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    seed_text = f"seed {args.seed}" if args.seed is not None else f"mean of seeds {', '.join(map(str, seeds))}"
    print(f"arch {index} {result['arch'] or ''}")
    print(f"{task}, hp {args.hp}, epoch {epoch} of 0..{epochs - 1}, {seed_text}")
    for metric, value in values.items():
        print(f"  {metric:<24} {'not recorded' if value is None else f'{value:.6g}'}")
    for key, value in (result.get("cost") or {}).items():
        print(f"  {key:<24} {value if value is None or isinstance(value, str) else f'{value:.6g}'}")
    return 0
