"""Search spaces (no torch): `nb360.space.nb201` is the NAS-Bench-201 cell space (NATS-Bench's topology space
"tss"), `nb360.space.sss` NATS-Bench's size space, `nb360.space.darts` the DARTS cell space."""

from types import ModuleType

from ..errors import InputError
from . import darts, nb201, sss

__all__ = ["darts", "for_table", "nb201", "sss"]

# The spaces a table can index, by the name its `space` attribute records.
TABLE_SPACES: dict[str, ModuleType] = {"nb201": nb201, "sss": sss}


def for_table(name: str) -> ModuleType:
    """The space module of a table's `space` name ('nb201' or 'sss'): arch_str, index_of, NUM_ARCHS."""
    try:
        return TABLE_SPACES[name]
    except KeyError:
        raise InputError(f"unknown table space {name!r}; nb360 knows {', '.join(TABLE_SPACES)}") from None
