"""The interface between the search loop and a weight-sharing method's architecture update.

The loop (`engine.SupernetSearch`) owns the supernet, its weight optimiser, the data and the
epochs; a method decides what the network mixes with (the weight step's and the evaluation's
architecture weights, or a sampled `Path`), how one architecture step changes them, the order of
the two steps, what happens at the start and end of an epoch (GDAS's τ, ENAS's controller), how
the genotype is derived (argmax, or candidates scored on validation: `paths.py`), and which state
a checkpoint keeps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from ..engine import SupernetSearch


def zeros_for_none(params: list[torch.Tensor], grads: tuple[torch.Tensor | None, ...]) -> list[torch.Tensor]:
    """Gradients with None (a parameter the loss does not reach) replaced by zeros."""
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


class ArchMethod:
    """A weight-sharing method's architecture update (subclasses: one module per method)."""

    name = ""
    # NATS's search-cell.py steps the weights, then the architecture; DARTS (quark0/darts) the other way round
    weights_first = False

    def __init__(self, engine: SupernetSearch) -> None:
        self.engine = engine

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch's first step (e.g. GDAS's temperature schedule)."""

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """Called after each epoch's last step (e.g. ENAS trains its controller); returns entries for the epoch log."""
        return {}

    def derive(self) -> str:
        """The genotype of the current state: the argmax of the architecture weights (the space's rule)."""
        engine = self.engine
        weights = self.arch_weights().detach()
        if engine.space == "darts":
            return engine.net.genotype(weights=weights)
        return engine.net.genotype(engine.config.exclude_none, weights=weights)

    def arch_weights(self) -> Any:
        """The architecture weights the network mixes with now: (6, 5) for NB201, MixWeights for DARTS."""
        return self.engine.net.arch_weights()

    def train_mix(self) -> Any:
        """What the weight step's network mixes with (None: the network's own softmax of α)."""
        return None

    def eval_mix(self) -> Any:
        """What the supernet's evaluation mixes with (None: the network's own softmax of α)."""
        return None

    def arch_step(self, train_batch: tuple[Any, ...], arch_batch: tuple[Any, ...], lr: float,
                  generator: torch.Generator) -> dict[str, Any]:
        """One architecture update; returns {"objectives", "lambda", "grad_norm", ...} for the step log."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The method's state a checkpoint keeps (besides the network's α, which live in its state_dict)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s state."""


def norm(grads: Any) -> torch.Tensor:
    """L2 norm of a tensor or of a list of tensors taken together."""
    if isinstance(grads, torch.Tensor):
        return grads.norm()
    if len(grads) == 1:
        return grads[0].norm()
    return torch.sqrt(sum((g * g).sum() for g in grads))
