"""PC-DARTS: DARTS's update on α and the edge parameters β of the partial-channel DARTS-space supernet.

The method is in the network (mixed ops see C/K channels, edges weighted by softmax(β); the
supernet's `arch_parameters()` lists α and β) and in its settings (`config.DARTS_SPACE_DEFAULTS`:
lr 0.1, Adam(α, β) 6e-4, architecture steps from epoch 15); the update itself is DARTS's.
"""

from __future__ import annotations

from .darts import DartsMethod


class PcDartsMethod(DartsMethod):
    """DARTS's architecture step on α and β."""

    name = "pcdarts"
