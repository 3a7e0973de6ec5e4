"""Errors a user can cause. Each message names the problem and the fix; the CLI prints it as one line."""

from __future__ import annotations


class Nb360Error(Exception):
    """Base class of every error nb360 raises for bad input or a bad environment."""


class BuildError(Nb360Error, ImportError):
    """The compiled part of nb360 is missing or does not match the installed torch."""


class InputError(Nb360Error, ValueError):
    """A bad argument value: unknown name, out-of-range number, malformed string."""


class DataError(Nb360Error, OSError):
    """A missing, corrupt, truncated or foreign data or table file."""


class MissingValueError(Nb360Error, LookupError):
    """A well-formed query for a value the table does not record (e.g. an epoch a run never evaluated)."""


class ClosedTableError(InputError):
    """A lookup on a Table after close(): open the table again."""
