"""Weight-sharing methods, one module each, found by name (`method_for`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import ArchMethod
from .darts import DartsMethod
from .e2rnas import E2rnasMethod
from .enas import EnasMethod
from .gaea import GaeaMethod
from .gdas import GdasMethod
from .pcdarts import PcDartsMethod
from .random_ws import RandomWsMethod
from .setn import SetnMethod

if TYPE_CHECKING:
    from ..engine import SupernetSearch

METHOD_CLASSES: dict[str, type[ArchMethod]] = {
    cls.name: cls for cls in (DartsMethod, PcDartsMethod, GaeaMethod, E2rnasMethod, GdasMethod, SetnMethod, EnasMethod,
                              RandomWsMethod)}


def method_for(engine: SupernetSearch) -> ArchMethod:
    """The architecture update of the engine's configured method."""
    return METHOD_CLASSES[engine.config.method](engine)


__all__ = ["METHOD_CLASSES", "ArchMethod", "method_for"]
