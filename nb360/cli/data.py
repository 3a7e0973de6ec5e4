"""`nb360 data`: download, verify, generate and import task data."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from . import SEED, WORKERS, add_common_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` subcommand and its own subcommands."""
    from ..data import darcy_generator as darcy

    parser = subparsers.add_parser(
        "data", help="download, verify, generate or import task data",
        description="Get the data of a NAS-Bench-360 task: download its released files, verify them, generate "
                    "Darcy Flow data locally, or import the small real Darcy files shipped by neuraloperator 0.3.0.")
    add_common_options(parser)
    commands = parser.add_subparsers(title="data commands", metavar="ACTION", required=True)

    p = commands.add_parser(
        "download", help="download a task's released files (resumable, verified)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Download the released data files of task NAME into DIR. Sources are tried in the card's "
                    "order; a broken transfer resumes where it stopped (rerunning the command resumes too); "
                    "each file is checked against its size and sha256 and appears under its name only once "
                    "verified. Where the card publishes no sha256, the first download's sha256 is recorded in "
                    "DIR/nb360-downloads.json and later checks use it; such files are reported as UNVERIFIED "
                    "(first seen), since nothing published says the first copy was whole. A second download of "
                    "the same file into DIR waits for the first; no more bytes than the expected size are "
                    "taken; a stalled transfer is cut after --timeout seconds and the bytes received are kept "
                    "for the next run. Archives are extracted into DIR without replacing anything already there "
                    "(a clash is refused) and within 100x their size (a decompression bomb is refused).")
    p.add_argument("name", metavar="NAME", help="task name, e.g. darcyflow (see `nb360 tasks list`)")
    _root_option(p)
    p.add_argument("--include-dead", action="store_true",
                   help="also try sources the card marks dead (by default they are skipped)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="seconds to wait for a server, and the window in which a transfer must deliver at least "
                        "1 KiB before it counts as stalled (default 60)")
    p.add_argument("--no-extract", action="store_true",
                   help="keep archives packed (the loaders read zip and tar members directly; saves disk space)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_common_options(p)
    p.set_defaults(func=run_download)

    p = commands.add_parser(
        "verify", help="check downloaded files against their size and sha256",
        description="Check every released file of task NAME in DIR against the card's size and sha256 (or the "
                    "sha256 recorded at download where none is published: reported as UNVERIFIED, first seen). "
                    "For darcyflow a generated set in "
                    "DIR is checked against its provenance record too. Exit status 2 if any file is missing "
                    "or bad (a verified generated Darcy set stands in for missing released Darcy files).")
    p.add_argument("name", metavar="NAME", help="task name")
    _root_option(p)
    add_common_options(p)
    p.set_defaults(func=run_verify)

    p = commands.add_parser(
        "generate", help="generate Darcy Flow data locally (no download)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate Darcy Flow data with the FNO recipe: -div(a grad u) = 1 on the unit square, u = 0 "
                    "on the boundary, a = 12 / 4 from a thresholded Gaussian random field on the 421 grid.\n"
                    f"Writes DIR/{darcy.TRAIN_FILE}, DIR/{darcy.TEST_FILE} (`coeff` and `sol`, float64, "
                    f"N x R x R: the released files' layout) and DIR/{darcy.PROVENANCE_FILE}.\n"
                    "Deterministic per seed, whatever the number of workers.\n\n"
                    "Cost (measured on 2 cores): the default 'direct' pipeline solves on R nodes, about 30 ms "
                    "per sample per core at R = 85, so the default 1000 + 100 samples take about 20-30 s; it "
                    "agrees with the 421-node pipeline within 0.1% relative L2. --pipeline full solves every "
                    "sample on 421 nodes (about 1 s per sample per core: about 10 min for 1000 + 100 on 2 "
                    "cores), as the released files were made.")
    p.add_argument("task", choices=["darcyflow"], help="what to generate (only darcyflow)")
    _root_option(p)
    p.add_argument("--n", type=int, default=darcy.DEFAULT_N_TRAIN, metavar="N",
                   help=f"train samples (default {darcy.DEFAULT_N_TRAIN}; the benchmark uses 1000: 900 train + "
                        "100 val)")
    p.add_argument("--n-test", type=int, default=darcy.DEFAULT_N_TEST, metavar="N",
                   help=f"test samples (default {darcy.DEFAULT_N_TEST})")
    p.add_argument("--resolution", type=int, default=darcy.DEFAULT_RESOLUTION, metavar="R",
                   help=f"grid points per side; R-1 must divide 420 (default {darcy.DEFAULT_RESOLUTION}, the "
                        "benchmark's)")
    p.add_argument("--seed", type=SEED, default=darcy.DEFAULT_SEED, metavar="S",
                   help=f"random seed (default {darcy.DEFAULT_SEED})")
    p.add_argument("--pipeline", choices=["direct", "full"], default="direct",
                   help="direct: solve on R nodes (fast, default); full: solve on 421 nodes and subsample")
    p.add_argument("--workers", type=WORKERS, default=None, metavar="W",
                   help=f"worker processes (default: all {os.cpu_count()} cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common_options(p)
    p.set_defaults(func=run_generate)

    p = commands.add_parser(
        "import-neuralop", help="import the small real Darcy files shipped in the neuraloperator 0.3.0 wheel",
        description="Fetch the neuraloperator==0.3.0 wheel with pip (`pip download --no-deps`; nothing is "
                    "installed) or use --wheel, read its darcy_{train_16,test_16,test_32}.pt files without torch, "
                    "and write them as .mat files (`coeff`, `sol`) with a provenance record. These are real "
                    "solver outputs but at 16 x 16 / 32 x 32, with a 0/1 coefficient and a rescaled solution.")
    _root_option(p)
    p.add_argument("--wheel", type=Path, default=None, metavar="PATH",
                   help="use this neuraloperator-0.3.0 wheel instead of downloading it")
    add_common_options(p)
    p.set_defaults(func=run_import_neuralop)


def _root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", "--data-root", dest="root", type=Path, required=True, metavar="DIR",
                        help="the task's data directory (--data-root, as the other commands call it, also works)")


def _task_files(name: str):
    """The DataFile entries of task `name` from the card registry."""
    from ..tasks import get_task

    return get_task(name).files


def run_download(args: argparse.Namespace) -> int:
    """Download a task's files and report what happened."""
    from ..data.download import download_files
    from ..errors import InputError

    files = _task_files(args.name)
    if not files:
        hint = " (generate it instead: `nb360 data generate darcyflow`)" if args.name == "darcyflow" else ""
        raise InputError(f"task {args.name!r} lists no files to download{hint}")
    results = download_files(files, args.root, progress=not args.no_progress, timeout=args.timeout,
                             include_dead=args.include_dead, extract=not args.no_extract, task=args.name)
    for r in results:
        how = "already present" if r.action == "present" else f"downloaded from {r.source}" + (
            " (resumed)" if r.resumed else "")
        print(f"{r.name}: {how}, {r.size} bytes, sha256 {r.sha256}: {r.label}")
        for note in r.notes:
            print(f"  note: {note}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Verify a task's files; exit status 2 when any is missing or bad."""
    from ..data.download import verify_files
    from ..errors import DataError

    results = verify_files(_task_files(args.name), args.root, progress=True)
    for r in results:
        print(f"{r.status:9s} {r.name}: {r.message}")
    generated_ok = False
    if args.name == "darcyflow":
        from ..data import darcy_generator as darcy

        # Where the loaders look: the root itself, then root/darcyflow/.
        for directory in (args.root, args.root / args.name):
            if (directory / darcy.PROVENANCE_FILE).exists():
                record = darcy.verify_generated(directory)
                generated_ok = True
                n = record["n"]
                print(f"{'ok':9s} generated set in {directory}: {', '.join(record['files'])} match "
                      f"{darcy.PROVENANCE_FILE} ({n['train']} train + {n['test']} test at {record['resolution']}x"
                      f"{record['resolution']}, seed {record['seed']})")
                break
    unverified = [r.name for r in results if r.status in ("unverified", "unchecked")]
    if unverified:
        print(f"{len(unverified)} file(s) UNVERIFIED (first seen): the task card publishes no checksum for "
              f"{', '.join(unverified)}, so they are checked only against the copy first downloaded here")
    bad = [r for r in results if r.status == "bad"]
    missing = [r for r in results if r.status == "missing"]
    if bad or (missing and not generated_ok):
        from ..data._common import download_command

        names = ", ".join(r.name for r in bad + missing)
        raise DataError(f"{len(bad)} bad and {len(missing)} missing file(s) for {args.name} in {args.root}: {names}; "
                        f"fetch them with `{download_command(args.name, args.root)}`")
    if not results and not generated_ok:
        print(f"task {args.name!r} lists no files to verify")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    """Generate Darcy Flow data."""
    from ..data.darcy_generator import generate_darcyflow

    out = generate_darcyflow(args.root, n_train=args.n, n_test=args.n_test, resolution=args.resolution,
                             seed=args.seed, pipeline=args.pipeline, workers=args.workers,
                             progress=not args.no_progress)
    for path in (out.train, out.test, out.provenance):
        print(path)
    return 0


def run_import_neuralop(args: argparse.Namespace) -> int:
    """Import the neuraloperator 0.3.0 Darcy files."""
    from ..data.neuralop_import import import_neuralop

    out = import_neuralop(args.root, wheel=args.wheel)
    for path in out.files:
        print(path)
    print(out.provenance)
    return 0
