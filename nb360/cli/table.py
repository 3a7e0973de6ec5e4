"""`nb360 table`: import released NATS-Bench / NAS-Bench-360 tables, show what a table holds, query it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import BATCH, COUNT, EPOCHS, SEED, STACK, THREADS, WIDTH, WORKERS, add_common_options, device_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `table` subcommand group."""
    parser = subparsers.add_parser(
        "table", help="import, inspect and query precomputed NB201 / NATS-Bench tables",
        description="Precomputed NAS-Bench-201 tables in nb360's memory-mapped HDF5 format (docs/table-format.md).")
    add_common_options(parser)
    sub = parser.add_subparsers(title="table commands", metavar="ACTION", required=True)

    p = sub.add_parser("import", help="convert a released NATS-Bench / NAS-Bench-360 table (topology or size space)",
                       description="Convert a released table of NATS-Bench's topology space (NATS-tss-*, the "
                                   "NAS-Bench-360 files) or size space (NATS-sss-*): the single .pickle.pbz2 file or "
                                   "the -simple directory, into an nb360 table. Needs no nats_bench; unpickles with a "
                                   "restricted unpickler that refuses anything but the released files' types. Without "
                                   "-o the table goes where nb360.compat.nats.create(None, ...) looks: "
                                   "$NB360_TABLES/<base name>.h5, $NB360_TABLES defaulting to ~/.nb360/tables.")
    p.add_argument("source", help="the .pickle.pbz2 file (or decompressed .pickle) or the -simple directory")
    p.add_argument("-o", "--output",
                   help="the nb360 table to write (.h5); default $NB360_TABLES/<base name of SOURCE>.h5, e.g. "
                        "~/.nb360/tables/NATS-tss-v1_0-3ffb9.h5")
    p.add_argument("--tasks", nargs="+", metavar="TASK",
                   help="import only these datasets (e.g. cifar10-valid ninapro); default: all")
    add_common_options(p)
    p.set_defaults(func=run_import)

    p = sub.add_parser(
        "build", help="train architectures and write a table (local processes or Ray)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train NB201 architectures on a task with a precompute protocol and write an nb360 table, "
                    "recording measured train/eval times, inference latency, params, FLOPs and, for "
                    "classification, clean and adversarial accuracy.\n\n"
                    "Work is sharded by architecture; finished shards are written atomically to the work "
                    "directory, so rerunning the same command after an interruption resumes and loses no finished "
                    "shard. NAS-Bench-360's protocol is the default: SGD 0.1 cosine, nesterov, wd 5e-4, C=16, N=5; "
                    "pass --epochs 200 --batch-size 256 (NinaPro) or 16 (Darcy Flow) and --seeds 777.\n\n"
                    "Deviation from NAS-Bench-360 (which trained one network per GPU process): by default 16 "
                    "architectures train together as one stacked computation (--stack; shards then group cells "
                    "with common operations). Each keeps its own initialisation, data order and optimiser state, so "
                    "its record equals the one-at-a-time record (--stack 1, the reference) up to float rounding; "
                    "measured times of a stack are apportioned to its archs by FLOPs. Several builds on the same "
                    "data (other --epochs) go into one multi-fidelity table with --merge-with.")
    p.add_argument("--space", default="nb201", choices=["nb201"], help="search space (default nb201)")
    p.add_argument("--task", required=True, help="task name (see `nb360 tasks list`)")
    p.add_argument("--data-root", required=True, help="the task's data directory")
    p.add_argument("--hp", "--epochs", dest="epochs", type=EPOCHS, required=True, help="training epochs (the fidelity)")
    p.add_argument("--seeds", type=SEED, nargs="+", default=[777], help="training seeds (default 777)")
    p.add_argument("--archs", default="all",
                   help="all (15,625), unique (6,466 isomorphism classes; the others share their class's row), "
                        "unique-sample:N[:SEED] (N of those classes drawn uniformly, seed 0 by default; their "
                        "members share their rows), a range A-B, or a list i,j,k (default all)")
    p.add_argument("-o", "--output", required=True, help="the table to write (.h5)")
    p.add_argument("--work-dir", help="where shards are kept (default: OUTPUT.work)")
    p.add_argument("--executor", default="local", choices=["local", "ray"], help="local processes (default) or Ray")
    p.add_argument("--workers", type=WORKERS, default=1, help="local worker processes, or CPUs of a local Ray instance")
    p.add_argument("--ray-address", help="an existing Ray cluster (default: $RAY_ADDRESS, else a local instance)")
    p.add_argument("--shard-size", type=COUNT, default=16, help="archs per shard (default 16)")
    p.add_argument("--channels", "-C", type=WIDTH, default=16, help="network width C (default 16)")
    p.add_argument("--cells", "-N", type=WIDTH, default=5, help="cells per stage N (default 5)")
    p.add_argument("--batch-size", type=BATCH, default=256, help="training batch size (default 256)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1, cosine to 0)")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay (default 5e-4)")
    p.add_argument("--device", default="cpu", type=device_arg, help="cpu or cuda[:k] (default cpu)")
    p.add_argument("--threads", type=THREADS, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--stack", type=STACK, default=16, metavar="K",
                   help="archs trained together as one stacked computation (default 16; 1 = one at a time, the "
                        "reference): each arch keeps its own initialisation, data order and optimiser state, and "
                        "its record equals the one-at-a-time record up to float rounding")
    p.add_argument("--loader-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the task's data loader, e.g. sub=2 for Darcy Flow (repeatable)")
    p.add_argument("--merge-with", nargs="+", default=[], metavar="WORK_DIR",
                   help="work directories of other finished builds on the same data (other --epochs or seeds) whose "
                        "runs the output table holds too: a multi-fidelity table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common_options(p)
    p.set_defaults(func=run_build)

    p = sub.add_parser("info", help="show a table's schema, provenance, runs and protocols",
                       description="Show the schema version, provenance (source file and sha256, nb360 version, "
                                   "creation time) and every run group (task, fidelity hp, seed, epochs, metrics, "
                                   "training protocol).")
    p.add_argument("path", help="an nb360 table (.h5)")
    p.add_argument("--verify", action="store_true", help="also check every dataset against its recorded sha256")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_common_options(p)
    p.set_defaults(func=run_info)

    p = sub.add_parser("upgrade", help="add checksums to a table written before nb360 had them",
                       description="Rewrite a table of header version 1 (written before tables carried checksums; "
                                   "nb360 refuses to read it by default) with the index and chunk checksums of "
                                   "version 2. Every dataset is first checked against the sha256 recorded when the "
                                   "table was created, so a corrupt table is refused instead of certified; the "
                                   "rewrite is checked to hold the same bytes. Writes in place (atomically) unless "
                                   "-o is given.")
    p.add_argument("path", help="the table to upgrade (.h5)")
    p.add_argument("-o", "--output", help="write the upgraded table here instead of replacing PATH")
    add_common_options(p)
    p.set_defaults(func=run_upgrade)

    p = sub.add_parser("query", help="look up an architecture",
                       description="Look up one architecture (an index, or an arch string such as "
                                   "'|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                                   "skip_connect~2|') in a table: one metric, or every metric and cost at an epoch.")
    p.add_argument("path", help="an nb360 table (.h5)")
    p.add_argument("arch", help="arch index or arch string")
    p.add_argument("--metric", help="curve metric, e.g. ori-test-accuracy (default: all metrics and costs)")
    p.add_argument("--epoch", type=int, default=-1, help="epoch, 0-based; -1 (default) is the last")
    p.add_argument("--hp", help="fidelity: epochs of the training protocol (default: the highest recorded)")
    p.add_argument("--task", help="task (dataset) name; needed when the table holds several")
    p.add_argument("--seed", type=SEED, help="one seed (default: the mean over the recorded seeds)")
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
    from ..compat.nats.location import default_output
    from ..table import Table
    from ..table.importer import import_nats

    output = args.output or default_output(args.source)
    if not args.output:
        output.parent.mkdir(parents=True, exist_ok=True)
    out = import_nats(args.source, output, tasks=args.tasks, progress=_progress)
    table = Table.open(out)
    print(f"wrote {out} ({table.info()['size_bytes'] / 1e6:.1f} MB): {len(table.runs)} run groups, tasks "
          f"{', '.join(table.tasks)}")
    return 0


def _key_values(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> a dict, with ints and floats parsed."""
    from ..errors import InputError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--loader-option {item!r}: expected KEY=VALUE")
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def run_build(args: argparse.Namespace) -> int:
    """Build (or resume building) a table."""
    from ..build import BuildSpec, build_table
    from ..devices import require_available
    from ..table import Table

    require_available(args.device)
    if args.executor == "ray":  # an unreachable cluster is reported now, not after minutes of silent retries
        import os

        from ..ray_cluster import check_ray_address

        address = args.ray_address or os.environ.get("RAY_ADDRESS")
        if address:
            check_ray_address(address)
    elif args.ray_address:
        from ..errors import InputError

        raise InputError("--ray-address only applies with --executor ray")
    spec = BuildSpec(task=args.task, data_root=args.data_root, epochs=args.epochs, seeds=tuple(args.seeds),
                     archs=args.archs, channels=args.channels, cells=args.cells, batch_size=args.batch_size,
                     lr=args.lr, weight_decay=args.weight_decay, device=args.device, threads=args.threads,
                     stack=args.stack, loader_options=_key_values(args.loader_option))
    spec.validate()
    out = build_table(spec, args.output, work_dir=args.work_dir, shard_size=args.shard_size, executor=args.executor,
                      workers=args.workers, ray_address=args.ray_address, progress=not args.no_progress,
                      merge_with=args.merge_with)
    table = Table.open(out)
    info = table.info()
    hps = sorted({r["hp"] for r in info["runs"]}, key=int)
    print(f"wrote {out} ({info['size_bytes'] / 1e6:.2f} MB): {table.tasks[0]}, hp {', '.join(hps)}, seeds "
          f"{', '.join(map(str, args.seeds))}, {info['runs'][0]['rows']} archs trained per run")
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    """Add checksums to a table of header version 1."""
    from ..table.upgrade import upgrade_table

    out = upgrade_table(args.path, args.output)
    print(f"wrote {out}: the same data, now with index and chunk checksums (header version 2)")
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
            shape = (f"network {network['name']} (channels per arch), cell {network.get('genotype')}"
                     if network.get("name") else f"network C={network.get('channel')} N={network.get('num_cells')}")
            print(f"      protocol: {optim}; {shape}")
        if proto.get("source"):
            print(f"      protocol source: {proto['source']}")
        if proto.get("data"):
            print(f"      data: {_data_text(proto['data'])}")
    return 0


def run_query(args: argparse.Namespace) -> int:
    """Print one arch's values."""
    from ..errors import MissingValueError
    from ..space import TABLE_SPACES
    from ..table import Table

    table = Table.open(args.path)
    arch: Any = int(args.arch) if args.arch.lstrip("-").isdigit() else args.arch
    index = table.arch_index(arch)
    task = table.task_name(args.task)
    args.hp = str(args.hp) if args.hp is not None else table.highest_hp(task)
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
    result: dict[str, Any] = {"index": index, "arch": TABLE_SPACES[table.space].arch_str(index) if table.space in TABLE_SPACES else None,
                              "task": task, "hp": args.hp, "seeds": seeds, "epoch": epoch, "values": values}
    if not args.metric:
        result["cost"] = table.cost(index, hp=args.hp, task=task, seed=args.seed)
    result["units"] = {k: _unit(k) for k in [*values, *(result.get("cost") or {})] if _unit(k)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    seed_text = f"seed {args.seed}" if args.seed is not None else f"mean of seeds {', '.join(map(str, seeds))}"
    print(f"arch {index} {result['arch'] or ''}")
    print(f"{task}, hp {args.hp}, {seed_text}")
    print(f"at epoch {epoch} of 0..{epochs - 1}:")
    for metric, value in values.items():
        shown = "not recorded" if value is None else f"{value:.6g} {result['units'].get(metric, '')}".rstrip()
        print(f"  {metric:<24} {shown}")
    if result.get("cost"):
        print("cost (per-epoch and total times over the recorded epochs):")
    for key, value in (result.get("cost") or {}).items():
        shown = value if value is None or isinstance(value, str) else f"{value:.6g} {result['units'].get(key, '')}"
        print(f"  {key:<24} {str(shown).rstrip()}")
    return 0


def _data_text(data: dict[str, Any]) -> str:
    """The data a table was built on, in one line: generated or released, sizes, settings."""
    from ..evaluate import describe_data, generator_settings

    source = data.get("source") or {}
    split = " / ".join(f"{k} {v}" for k, v in (data.get("sizes") or {}).items())
    if source.get("generated"):
        return f"{describe_data({'source': 'generated', 'generator': generator_settings(source)})}; split {split}"
    return f"the released files ({len(data.get('files') or {})} hashed); split {split}"


def _unit(name: str) -> str:
    """The unit of a table value by its name (docs/table-format.md): M params, MFLOPs, seconds."""
    if name == "params":
        return "M params"
    if name == "flops":
        return "MFLOPs"
    if name == "latency" or name.endswith("-time") or "-time-" in name:
        return "s"
    return ""
