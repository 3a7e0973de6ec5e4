"""nb360's torch ops: fused kernels (torch.ops.nb360.*) with their plain-PyTorch references."""

from __future__ import annotations

from .._extension import load_ops

load_ops()

from .mixed_sum import mixed_sum, mixed_sum_reference  # noqa: E402  (after the library is loaded)
from .cell_node import cell_node, cell_node_reference, fused_kernels_available  # noqa: E402
from .search_cell import search_cell, search_cell_reference  # noqa: E402
from .batch_norm_rows import batch_norm_rows, batch_norm_rows_reference  # noqa: E402
from .cells import OPS, make_op  # noqa: E402  (reference NB201 cell operations, plain PyTorch)

__all__ = ["OPS", "batch_norm_rows", "batch_norm_rows_reference", "cell_node", "cell_node_reference", "fused_kernels_available", "make_op", "mixed_sum",
           "mixed_sum_reference", "search_cell", "search_cell_reference"]
