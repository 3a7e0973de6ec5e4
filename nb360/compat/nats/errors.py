"""Errors of the NATS-Bench facade: nb360 errors that are also the built-in types nats_bench raises.

A script written for nats_bench catches KeyError for an unknown dataset or hp and ValueError for a bad
index or epoch; the facade raises nb360.errors types (one-line CLI messages) that are those types too.
"""

from __future__ import annotations

from ...errors import InputError


class NATSKeyError(InputError, KeyError):
    """An unknown dataset, hp or record, where nats_bench raises KeyError."""

    __str__ = BaseException.__str__  # KeyError quotes its message; keep it readable


class WeightsUnavailableError(InputError):
    """Trained weights were asked for; nb360 tables (like NATS-Bench's -simple files) hold none."""


def translate(exc: BaseException) -> InputError:
    """A compiled-core error (KeyError / ValueError / IndexError) as the facade's error of the same kind."""
    message = exc.args[0] if exc.args else str(exc)
    if isinstance(exc, KeyError):
        return NATSKeyError(message)
    return InputError(message)
