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
from collections.abc import Callable, Sequence

from ..errors import Nb360Error

# Subcommand modules under nb360.cli, in the order `nb360 --help` lists them.
COMMANDS: tuple[str, ...] = ("run", "info", "table", "data", "tasks", "search", "ablate", "evaluate", "suite",
                             "report")

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


def bounded_int(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], refused at parse time (exit 2, one line) otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} (an integer in {low}..{high:,}), got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range for {what}: use {low}..{high:,}")
        return value

    parse.__name__ = what
    return parse


# Argument types with the limits nb360 can honour: numpy and torch take 32-bit seeds, and counts
# beyond these would only exhaust memory or run for years.
SEED = bounded_int(0, 2**32 - 1, "a seed")
EPOCHS = bounded_int(1, 100_000, "an epoch count")
REPEATS = bounded_int(1, 100_000, "a repeat count")
THREADS = bounded_int(1, 1024, "a thread count")
WORKERS = bounded_int(1, 1024, "a worker count")
COUNT = bounded_int(1, 1_000_000, "a count")
WIDTH = bounded_int(1, 4096, "a network width")
BATCH = bounded_int(1, 1 << 20, "a batch size")
STACK = bounded_int(1, 1024, "a stack size")


def _os_error_message(exc: OSError) -> str | None:
    """One line for an OSError the environment caused (a path that cannot be read or written), else None."""
    import errno

    user_errnos = {errno.EACCES, errno.EPERM, errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EEXIST,
                   errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ENAMETOOLONG, errno.ELOOP, errno.ETXTBSY}
    if exc.errno not in user_errnos or not exc.filename:
        return None
    target = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
    return (f"cannot use '{target}': {exc.strerror}; check the path and its permissions, or choose another "
            "(e.g. another --out / -o / --root)")


def main(argv: Sequence[str] | None = None, *, own_children: bool | None = None) -> int:
    """Run the nb360 command line; return the exit status.

    As the console command (argv None, or own_children=True) it stops and reaps every process it
    started before it returns (nb360/cli/_children.py); called with an argv (tests, scripts) it
    leaves the caller's processes alone.
    """
    from ..cpu import prefer_passive_wait
    from ._children import become_subreaper, stop_children

    prefer_passive_wait()  # before anything imports torch: sleeping, not spinning, OpenMP waits (nb360.cpu)
    if own_children is None:
        own_children = argv is None
    if own_children:
        become_subreaper()
    try:
        return _main(argv)
    finally:
        if own_children:
            stop_children()


def _main(argv: Sequence[str] | None) -> int:
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
    except Exception as exc:  # a bug in nb360, not the user's fault, unless the environment refused a path
        if debug:
            raise
        message = _os_error_message(exc) if isinstance(exc, OSError) else None
        if message is not None:  # an unwritable output path, a full disk: exit 2, one line
            print(f"nb360: error: {message}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(f"nb360: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback "
              "and report it)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
