"""nb360: a benchmark for neural architecture search on diverse tasks.

Importing nb360 is cheap and does not import torch: `nb360.table`, `nb360.space` and
`nb360.metrics` work without it. The torch ops load with `nb360.ops`.
"""

from __future__ import annotations

from ._build_check import check_build

_build_info = check_build()
__version__: str = _build_info.VERSION

__all__ = ["__version__"]
