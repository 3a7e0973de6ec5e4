"""nb360's torch ops: fused kernels (torch.ops.nb360.*) with their plain-PyTorch references."""

from __future__ import annotations

from .._extension import load_ops

load_ops()

from .mixed_sum import mixed_sum, mixed_sum_reference  # noqa: E402  (after the library is loaded)

__all__ = ["mixed_sum", "mixed_sum_reference"]
