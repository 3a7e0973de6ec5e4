"""E2RNAS: DARTS's architecture step on several upper-level objectives combined per step by MGDA.

The enabled objectives F_t (validation loss `acc`, FGSM-RS validation loss `adv`, constrained
expected size `size` or FLOPs `flops`) at w (or the unrolled w'), their partial gradients ∇_α F_t
normalised (`grad_norm`, L2 + 1e-7), MGDA's min-norm weights λ (+1e-7; λ = 1 with MGDA off), then
DARTS's step on Σ λ_t F_t (search-methods.md §1.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ....robust import _clip_box, _uniform_like, fgsm_step
from ...e2rnas_deviations import AUTHORS_DEVIATIONS, Deviation  # noqa: F401 (re-exported)
from ...mgda import NORM_EPS, gradient_normalizers, min_norm_weights
from ..losses import batch_loss
from . import unrolled
from .darts import DartsMethod


class E2rnasMethod(DartsMethod):
    """DARTS's step on MGDA-weighted accuracy, robustness and size objectives."""

    name = "e2rnas"

    def objectives(self, batch: tuple[Any, ...], params: dict[str, torch.Tensor] | None, weights: Any,
                   generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The enabled upper-level objectives at w (or the unrolled w'), differentiable in α."""
        engine, cfg = self.engine, self.engine.config
        out: dict[str, torch.Tensor] = {}
        x, rest = batch[0], tuple(batch[1:])

        def model(inp: torch.Tensor) -> torch.Tensor:
            return unrolled.forward(engine, inp, params)

        if "acc" in cfg.objectives or "adv" in cfg.objectives:
            x_req = x.detach().requires_grad_("adv" in cfg.objectives)
            f_acc = batch_loss(engine.arch_obj, model, (x_req, *rest), engine.device)
            if "acc" in cfg.objectives:
                out["acc"] = f_acc
            if "adv" in cfg.objectives:
                # FGSM-RS from the clean validation loss's input gradient (E2RNAS HEAD), δ detached
                (g_x,) = torch.autograd.grad(f_acc, x_req, retain_graph=True)
                threat = engine.threat
                assert threat is not None
                eps = threat.scale(x, threat.eps)
                start = _clip_box(x + _uniform_like(x, eps, generator), threat.box(x))
                x_adv = fgsm_step(x, g_x, threat, step_size=cfg.adv_step * threat.eps, start=start)
                out["adv"] = batch_loss(engine.arch_obj, model, (x_adv, *rest), engine.device)
        for name in ("size", "flops"):
            if name in cfg.objectives:
                out[name] = engine.resources[name](weights)
        return out

    def combine(self, names: list[str], objectives: dict[str, torch.Tensor], grads: list[list[torch.Tensor]],
                info: dict[str, Any]) -> np.ndarray:
        """MGDA's min-norm weights of the normalised gradients (+1e-7), or λ = 1 with MGDA off."""
        cfg = self.engine.config
        if not cfg.mgda or len(names) < 2:
            return np.ones(len(names))
        # one tensor per objective for a single α (the NB201 case), else the list of per-parameter gradients
        flat = [g[0] if len(g) == 1 else g for g in grads]
        divisors = gradient_normalizers(flat, [float(objectives[n].detach()) for n in names], cfg.grad_norm)
        scaled = [[gi / (float(d) + NORM_EPS) for gi in g] for g, d in zip(grads, divisors)]
        solution = min_norm_weights([s[0] if len(s) == 1 else s for s in scaled], solver=cfg.mgda_solver,
                                    max_iter=cfg.mgda_max_iter)
        info["mgda_iterations"] = solution.iterations
        info["mgda_converged"] = solution.converged
        return solution.weights + 1e-7
