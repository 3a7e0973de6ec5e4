"""Search spaces (no torch): `nb360.space.nb201` is the NAS-Bench-201 cell space, `nb360.space.darts` the DARTS
cell space."""

from . import darts, nb201

__all__ = ["darts", "nb201"]
