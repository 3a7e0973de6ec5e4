"""Search spaces (no torch): `nb360.space.nb201` is the NAS-Bench-201 cell space."""

from . import nb201

__all__ = ["nb201"]
