"""DARTS: Adam on the architecture parameters α, first order (∇_α L_val at w) or second order (the unrolled
hypergradient, `unrolled.py`; DARTS-V2). The network mixes with softmax(α).

Subclasses change the upper level: E2RNAS's objectives and MGDA weights (`e2rnas.py`), PC-DARTS's
partial-channel network with edge weights β (`pcdarts.py`: the same update on α and β).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..losses import batch_loss
from . import unrolled
from .base import ArchMethod, norm, zeros_for_none

if TYPE_CHECKING:
    from ..engine import SupernetSearch


class DartsMethod(ArchMethod):
    """DARTS's architecture step on the validation loss."""

    name = "darts"

    def __init__(self, engine: SupernetSearch) -> None:
        super().__init__(engine)
        cfg = engine.config
        self.a_opt = torch.optim.Adam(engine.net.arch_parameters(), lr=cfg.arch_lr, betas=cfg.arch_betas,
                                      weight_decay=cfg.arch_weight_decay, eps=cfg.arch_eps)

    # ------------------------------------------------------------------ the upper level
    def objectives(self, batch: tuple[Any, ...], params: dict[str, torch.Tensor] | None, weights: Any,
                   generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The upper-level objectives at w (or the unrolled w'), differentiable in α: DARTS's validation loss."""
        engine = self.engine
        return {"acc": batch_loss(engine.arch_obj, lambda inp: unrolled.forward(engine, inp, params), batch,
                                  engine.device)}

    def combine(self, names: list[str], objectives: dict[str, torch.Tensor], grads: list[list[torch.Tensor]],
                info: dict[str, Any]) -> np.ndarray:
        """The weights λ_t of Σ λ_t F_t (one objective: λ = 1)."""
        return np.ones(len(names))

    # ------------------------------------------------------------------ the step
    def arch_step(self, train_batch: tuple[Any, ...], arch_batch: tuple[Any, ...], lr: float,
                  generator: torch.Generator) -> dict[str, Any]:
        """Objectives, their α-gradients, λ, then Adam on ∇_α Σ λ_t F_t (first or second order)."""
        engine, cfg = self.engine, self.engine.config
        arch = list(engine.net.arch_parameters())  # NB201: one (6, 5) α shared by all cells; DARTS: α (and β)
        params = unrolled.unrolled_weights(engine, train_batch, lr) if cfg.second_order else None
        objectives = self.objectives(arch_batch, params, engine.net.arch_weights(), generator)
        names = list(objectives)
        grads = [zeros_for_none(arch, torch.autograd.grad(objectives[n], arch, retain_graph=True, allow_unused=True))
                 for n in names]
        info: dict[str, Any] = {"objectives": {n: float(objectives[n].detach()) for n in names},
                                "grad_norm": {n: float(norm(g)) for n, g in zip(names, grads)}}
        lam = self.combine(names, objectives, grads, info)
        info["lambda"] = {n: float(v) for n, v in zip(names, lam)}
        if cfg.second_order:
            assert params is not None
            total = sum(float(w) * objectives[n] for n, w in zip(names, lam))
            d_arch = unrolled.second_order_gradient(engine, total, params, train_batch, lr)
        else:
            # λ are constants, so ∇_α Σ λ_t F_t = Σ λ_t ∇_α F_t: reuse the per-objective gradients (no extra backward)
            d_arch = [sum(float(w) * g[i] for w, g in zip(lam, grads)) for i in range(len(arch))]
        self.a_opt.zero_grad(set_to_none=True)
        for a, d in zip(arch, d_arch):
            a.grad = d.detach()
        self.a_opt.step()
        return info

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Adam's state."""
        return {"a_opt": self.a_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore Adam's state."""
        self.a_opt.load_state_dict(state["a_opt"])
