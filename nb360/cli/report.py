"""`nb360 report`: a Markdown report (results tables, learning curves, leaderboard) of evaluate run directories."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_options

_DESCRIPTION = """\
Render a Markdown report (report.md) and the same as one self-contained HTML page (report.html:
sortable tables, plots inline, every number's source on hover) of one or more `nb360 evaluate` run
directories, or of one `nb360 suite` directory.

A suite report has the methods × tasks table beside NAS-Bench-360's published rows, performance
profiles (NAS-Bench-360's definition, stated in the report), per-task leaderboards and every unit.
Runs on generated or fixture data, with a shortened protocol or another model are never drawn on
the published rows' axis: they get their own panel, and every row says how many seeds it averages
(one seed: no ±).

For run directories: per run its model,
protocol, provenance, test results per seed with mean +- std, the task card's reference results
(with their source) and a learning-curve plot; for several runs also a leaderboard per task that
ranks the runs among the reference results (table and plot). Unfinished runs are reported from
their logs.

Example:
  nb360 report runs/evaluate-ninapro-wrn-20260101-120000 runs/evaluate-ninapro-arch-20260102-090000 --out report
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `report` subcommand."""
    parser = subparsers.add_parser("report", help="Markdown report with plots of evaluate run directories",
                                   description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directories written by nb360 evaluate, or one suite directory (nb360 suite)")
    parser.add_argument("--out", metavar="DIR",
                        help="where report.md and the plots go (default RUN_DIR/report for one run, ./nb360-report "
                             "for several)")
    parser.add_argument("--no-plots", action="store_true", help="tables only, no PNG plots")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the report and say where it is."""
    from ..report import write_report, write_suite_report

    out = Path(args.out) if args.out else (Path(args.run_dirs[0]) / "report" if len(args.run_dirs) == 1
                                          else Path("nb360-report"))
    suites = [d for d in args.run_dirs if (Path(d) / "suite.json").exists()]
    if suites:
        if len(args.run_dirs) > 1:
            from ..errors import InputError

            raise InputError(f"{suites[0]} is a suite directory: report it alone (`nb360 report {suites[0]}`)")
        path = write_suite_report(suites[0], out, plots=not args.no_plots)
    else:
        path = write_report(args.run_dirs, out, plots=not args.no_plots)
    print(f"report: {path}")
    print(f"html:   {path.with_name('report.html')}")
    return 0
