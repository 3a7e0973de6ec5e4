"""DARTS's second-order architecture gradient: the unrolled weights w' and the finite-difference Hessian term.

∇_α L_val(w', α) - ξ·[∇_α L_train(w⁺, α) - ∇_α L_train(w⁻, α)] / 2R with
w' = w - ξ(μ·m + ∇_w L_train + λ_wd·w), w± = w ± R·∇_{w'}L_val, R = r/‖∇_{w'}L_val‖
(quark0/darts `architect.py`; r = `SupernetSearch.hessian_r`, 0.01).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.func import functional_call

from ..losses import batch_loss
from .base import zeros_for_none

if TYPE_CHECKING:
    from ..engine import SupernetSearch


def forward(engine: SupernetSearch, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None,
            weights: Any = None) -> torch.Tensor:
    """The supernet at its own weights, or at `params` (an unrolled copy that keeps its own BN statistics)."""
    if params is None:
        return engine.net(x, weights)
    buffers = {name: b.clone() for name, b in engine.net.named_buffers()}
    return functional_call(engine.net, {**params, **buffers}, (x,), {"weights": weights})


def named_weights(engine: SupernetSearch) -> dict[str, torch.Tensor]:
    """The supernet's weights (every parameter but the architecture's), by name."""
    arch = {id(a) for a in engine.net.arch_parameters()}
    return {name: p for name, p in engine.net.named_parameters() if id(p) not in arch}


def unrolled_weights(engine: SupernetSearch, batch: tuple[Any, ...], lr: float) -> dict[str, torch.Tensor]:
    """w' = w - ξ(μ·m + ∇_w L_train + λ_wd·w): one virtual SGD step (DARTS's _compute_unrolled_model)."""
    cfg = engine.config
    named = named_weights(engine)
    loss = batch_loss(engine.train_obj, engine.net, batch, engine.device)
    grads = zeros_for_none(list(named.values()), torch.autograd.grad(loss, list(named.values()), allow_unused=True))
    out = {}
    for (name, p), g in zip(named.items(), grads):
        buf = engine.w_opt.state.get(p, {}).get("momentum_buffer")
        moment = buf * cfg.momentum if buf is not None else 0.0
        out[name] = (p - lr * (moment + g + cfg.weight_decay * p)).detach().requires_grad_(True)
    return out


def hessian_correction(engine: SupernetSearch, v: list[torch.Tensor], batch: tuple[Any, ...]) -> list[torch.Tensor]:
    """[∇_α L_train(w⁺) - ∇_α L_train(w⁻)] / 2R, w± = w ± R·v, R = r/‖v‖, per α tensor."""
    norm = torch.sqrt(sum((g * g).sum() for g in v))
    R = engine.hessian_r / (norm + 1e-12)
    named = named_weights(engine)
    arch = list(engine.net.arch_parameters())
    grads = []
    for sign in (1.0, -1.0):
        shifted = {name: (p + sign * R * g).detach() for (name, p), g in zip(named.items(), v)}
        loss = batch_loss(engine.train_obj, lambda inp: forward(engine, inp, shifted), batch, engine.device)
        grads.append(zeros_for_none(arch, torch.autograd.grad(loss, arch, allow_unused=True)))
    return [(plus - minus) / (2 * R) for plus, minus in zip(*grads)]


def second_order_gradient(engine: SupernetSearch, total: torch.Tensor, params: dict[str, torch.Tensor],
                          train_batch: tuple[Any, ...], lr: float) -> list[torch.Tensor]:
    """∇_α of `total` (an upper-level objective at w') with DARTS's Hessian correction."""
    arch = list(engine.net.arch_parameters())
    inputs = [*arch, *params.values()]
    grads_all = torch.autograd.grad(total, inputs, allow_unused=True)
    d_arch = zeros_for_none(arch, grads_all[:len(arch)])
    v = zeros_for_none(list(params.values()), grads_all[len(arch):])
    if any(bool(g.abs().sum() > 0) for g in v):
        d_arch = [d - lr * c for d, c in zip(d_arch, hessian_correction(engine, v, train_batch))]
    return d_arch
