"""The nb360 command line: one subcommand per module listed in COMMANDS.

Each subcommand module has `register(subparsers)` (adds its parser and sets `func`). User
errors (nb360.errors.Nb360Error, bad arguments) become one line on stderr and exit status 2;
tracebacks appear only with --debug.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ..errors import Nb360Error

# Subcommand modules under nb360.cli, in the order `nb360 --help` lists them.
COMMANDS: tuple[str, ...] = ("run", "info", "table", "data", "tasks", "search", "evaluate", "report", "ablate")

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (no usage dump) with exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> ArgumentParser:
    """Build the top-level parser with every registered subcommand."""
    from .. import __version__

    parser = ArgumentParser(
        prog="nb360",
        description="nb360: a benchmark for neural architecture search on diverse tasks.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nb360 {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every subcommand accepts (so `nb360 info --debug` works as well as `nb360 --debug info`)."""
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show Python tracebacks for errors")


def device_arg(value: str) -> str:
    """argparse type for --device: cpu, cuda or cuda:N, refused at parse time otherwise."""
    from ..devices import check_device_name

    try:
        return check_device_name(value)
    except Nb360Error as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the nb360 command line; return the exit status."""
    try:
        parser = build_parser()
    except Nb360Error as exc:  # e.g. a broken build detected at import time
        print(f"nb360: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return int(args.func(args) or 0)
    except Nb360Error as exc:
        if debug:
            raise
        print(f"nb360: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("nb360: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (silence the flush at exit)
        return 0
    except Exception as exc:  # a bug in nb360, not the user's fault
        if debug:
            raise
        print(f"nb360: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback "
              "and report it)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
