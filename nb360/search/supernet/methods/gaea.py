"""GAEA: exponentiated gradient on the simplex, p ← p·exp(-η∇_p L_val), then clamp(p, 1e-5) and renormalise per
edge (gaea_release `architect_edarts.py`); the network mixes with p directly (no softmax).

NB201: one (6, 5) tensor; DARTS space: [op weights (2, 14, 8), edge weights (2, 14)], the edge
weights renormalised per node. `exclude_none` holds the `none` op at 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ....space import nb201
from ..losses import batch_loss
from .base import ArchMethod, norm, zeros_for_none

if TYPE_CHECKING:
    from ..engine import SupernetSearch


class GaeaMethod(ArchMethod):
    """GAEA's exponentiated-gradient architecture step."""

    name = "gaea"

    def __init__(self, engine: SupernetSearch) -> None:
        super().__init__(engine)
        if engine.space == "darts":
            self.simplex: Any = self.renormalize([p.to(engine.device) for p in engine.net.simplex_init()])
        else:
            self.simplex = self.renormalize(torch.ones(nb201.NUM_EDGES, nb201.NUM_OPS, device=engine.device))

    def renormalize(self, p: Any) -> Any:
        """GAEA's normalize: clamp(p, 1e-5) / sum per edge (DARTS edge weights: per node); `none` held at 0 when
        excluded."""
        engine = self.engine
        if engine.space == "darts":
            return engine.net.simplex_normalize(p, engine.config.exclude_none)
        p = p.clamp(min=1e-5)
        if engine.config.exclude_none:
            p[:, nb201.OPS.index("none")] = 0.0
        return p / p.sum(dim=1, keepdim=True)

    def parts(self) -> list[torch.Tensor]:
        """The simplex tensors as a list (one tensor for NB201)."""
        return list(self.simplex) if isinstance(self.simplex, (list, tuple)) else [self.simplex]

    def mix(self, parts: Any = None) -> Any:
        """The weights the network mixes with, from the simplex (parts: tensors in `parts()` order)."""
        parts = self.parts() if parts is None else list(parts)
        return self.engine.net.simplex_mix(parts) if self.engine.space == "darts" else parts[0]

    def arch_weights(self) -> Any:
        """The simplex weights themselves."""
        return self.mix()

    def train_mix(self) -> Any:
        """The weight step mixes with the (detached) simplex."""
        return self.mix([p.detach() for p in self.parts()])

    def eval_mix(self) -> Any:
        """The evaluation mixes with the simplex."""
        return self.mix()

    def arch_step(self, train_batch: tuple[Any, ...], arch_batch: tuple[Any, ...], lr: float,
                  generator: torch.Generator) -> dict[str, Any]:
        """p ← normalize(p·exp(-η∇_p L_val)) on op (and edge) weights."""
        engine = self.engine
        eta = engine.config.arch_lr
        parts = [p.detach().requires_grad_(True) for p in self.parts()]
        mix = self.mix(parts)
        loss = batch_loss(engine.arch_obj, lambda inp: engine.net(inp, mix), arch_batch, engine.device)
        grads = zeros_for_none(parts, torch.autograd.grad(loss, parts, allow_unused=True))
        with torch.no_grad():
            self.simplex = self.renormalize([p * torch.exp(-eta * g) for p, g in zip(parts, grads)]
                                            if engine.space == "darts" else parts[0] * torch.exp(-eta * grads[0]))
        return {"objectives": {"acc": float(loss.detach())}, "lambda": {"acc": 1.0},
                "grad_norm": {"acc": float(norm(list(grads)))}}

    def state_dict(self) -> dict[str, Any]:
        """The simplex (on the CPU)."""
        return {"simplex": self.simplex.detach().cpu() if isinstance(self.simplex, torch.Tensor)
                else [p.detach().cpu() for p in self.simplex]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the simplex."""
        saved, device = state["simplex"], self.engine.device
        self.simplex = saved.to(device) if isinstance(saved, torch.Tensor) else [p.to(device) for p in saved]
