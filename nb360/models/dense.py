"""Shared pieces of the three task shapes: topology parsing and windowed inference for dense maps."""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InputError

TOPOLOGIES = ("point2d", "dense2d", "point1d")


def topology_layout(topology: str) -> tuple[int, bool]:
    """(spatial dims, dense?) of a topology: point2d → (2, False), dense2d → (2, True), point1d → (1, False)."""
    if topology == "point2d":
        return 2, False
    if topology == "dense2d":
        return 2, True
    if topology == "point1d":
        return 1, False
    raise InputError(f"unknown task topology {topology!r}: choose one of {', '.join(TOPOLOGIES)}")


def _window_starts(size: int, window: int, stride: int) -> list[int]:
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:  # cover the far edge with one last window aligned to it
        starts.append(size - window)
    return starts


class WindowedInference:
    """Mixin for dense networks: `forward_window` tiles a large map into window×window crops.

    Follows NAS-Bench-360's `Backbone.forward_window` (PSICOV: 512×512 test maps, 128 windows):
    each window is run through the network, predictions are summed into place and divided by how
    often each pixel was covered. Generalised to non-square maps, and where windows would leave
    the far edge uncovered (size not a multiple of the stride) one extra window aligned to that
    edge is added, where the original asserted divisibility (stride = window) or left the edge
    at 0/0 = NaN (overlapping strides).
    """

    def forward_window(self, x: torch.Tensor, window: int, stride: int | None = None,
                       **forward_kwargs: Any) -> torch.Tensor:
        """Predict a (N, C, H, W) map window by window; returns (N, num_outputs, H, W)."""
        if x.dim() != 4:
            raise InputError(f"forward_window takes a (N, C, H, W) batch, got shape {tuple(x.shape)}")
        window = int(window)
        stride = window if stride is None else int(stride)
        if window < 1 or stride < 1:
            raise InputError(f"window and stride must be positive, got window={window}, stride={stride}")
        height, width = x.shape[-2:]
        if window > height or window > width:
            raise InputError(f"window {window} is larger than the {height}×{width} map: use a window of at most "
                             f"{min(height, width)} or call the network on the whole map")
        out: torch.Tensor | None = None
        counts = x.new_zeros((1, 1, height, width))
        for top in _window_starts(height, window, stride):
            for left in _window_starts(width, window, stride):
                pred = self(x[:, :, top:top + window, left:left + window], **forward_kwargs)  # type: ignore[operator]
                if out is None:
                    out = x.new_zeros((x.shape[0], pred.shape[1], height, width), dtype=pred.dtype)
                out[:, :, top:top + window, left:left + window] += pred
                counts[:, :, top:top + window, left:left + window] += 1
        assert out is not None
        return out / counts
