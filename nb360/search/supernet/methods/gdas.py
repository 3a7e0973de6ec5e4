"""GDAS (Dong & Yang, CVPR 2019) on the NB201 supernet, as AutoDL's NATS-algos search-cell.py runs it.

Every forward draws one Gumbel sample for all cells (`GenericNAS201Model.normalize_archp`, mode
'gdas'): g = -log(Exp(1)), p = softmax((log_softmax(α) + g) / τ), a = argmax p, and the
straight-through weights h = onehot(a) - p.detach() + p; each edge runs only op a and returns
h_a·op_a(x) + Σ_{o≠a} h_o (`NAS201SearchCell.forward_gdas`; the other terms are 0 in value but pass
the gradient to every α of the edge). A sample with an infinite or NaN value is redrawn. The weight
step and the architecture step (Adam on α) each draw their own sample; τ falls linearly from
tau_max to tau_min over the epochs (`τ = τ_max - (τ_max - τ_min)·epoch/(epochs - 1)`). The
genotype is the argmax of α, `none` included (`genotype`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ....models.supernet import Path
from ..losses import batch_loss
from .base import norm
from .paths import PathMethod, path_of

if TYPE_CHECKING:
    from ..engine import SupernetSearch


def gumbel_hard_weights(alpha: torch.Tensor, tau: float, generator: torch.Generator
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(straight-through weights (6, 5), argmax index (6,)) of one Gumbel-softmax sample of α at temperature τ."""
    while True:
        noise = torch.empty(alpha.shape, dtype=alpha.dtype).exponential_(generator=generator).to(alpha.device)
        gumbels = -noise.log()
        probs = torch.softmax((alpha.log_softmax(dim=1) + gumbels) / tau, dim=1)
        index = probs.max(-1, keepdim=True)[1]
        one_hot = torch.zeros_like(probs).scatter_(-1, index, 1.0)
        hard = one_hot - probs.detach() + probs
        if not (torch.isinf(gumbels).any() or torch.isinf(probs).any() or torch.isnan(probs).any()):
            return hard, index.squeeze(-1)


class GdasMethod(PathMethod):
    """GDAS's Gumbel-sampled single path with straight-through α gradients."""

    name = "gdas"

    def __init__(self, engine: SupernetSearch) -> None:
        super().__init__(engine)
        cfg = engine.config
        self.tau = cfg.tau_max
        self.a_opt = torch.optim.Adam(engine.net.arch_parameters(), lr=cfg.arch_lr, betas=cfg.arch_betas,
                                      weight_decay=cfg.arch_weight_decay, eps=cfg.arch_eps)

    def start_epoch(self, epoch: int) -> None:
        """τ for this epoch, and the epoch's generator."""
        super().start_epoch(epoch)
        cfg = self.engine.config
        self.tau = cfg.tau_max - (cfg.tau_max - cfg.tau_min) * epoch / max(cfg.epochs - 1, 1)

    def sample(self) -> Path:
        """A fresh Gumbel sample of the path, with straight-through weights."""
        hard, index = gumbel_hard_weights(self.engine.net.alpha, self.tau, self.generator)
        return Path(index, hard)

    def train_mix(self) -> Any:
        """The weight step trains one Gumbel-sampled path."""
        return self.sample()

    def eval_mix(self) -> Any:
        """The supernet is evaluated on the argmax path (deterministic; see config.NATS_DEVIATIONS)."""
        return path_of(self.engine.net.alpha.argmax(dim=-1).tolist(), self.engine.device)

    def derive(self) -> str:
        """The argmax of α per edge, `none` included (search-cell.py's `network.genotype` for GDAS)."""
        return self.engine.net.genotype(self.engine.config.exclude_none)

    def arch_step(self, train_batch: tuple[Any, ...], arch_batch: tuple[Any, ...], lr: float,
                  generator: torch.Generator) -> dict[str, Any]:
        """Adam on α through the straight-through weights of a fresh sample, on the validation batch."""
        engine = self.engine
        path = self.sample()
        loss = batch_loss(engine.arch_obj, lambda x: engine.net(x, path), arch_batch, engine.device)
        self.a_opt.zero_grad(set_to_none=True)
        (grad,) = torch.autograd.grad(loss, [engine.net.alpha])
        engine.net.alpha.grad = grad
        self.a_opt.step()
        return {"objectives": {"acc": float(loss.detach())}, "lambda": {"acc": 1.0},
                "grad_norm": {"acc": float(norm(grad))}, "tau": self.tau}

    def state_dict(self) -> dict[str, Any]:
        """Adam's state."""
        return {"a_opt": self.a_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore Adam's state."""
        self.a_opt.load_state_dict(state["a_opt"])
