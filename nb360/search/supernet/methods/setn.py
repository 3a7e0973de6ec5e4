"""SETN (Dong & Yang, ICCV 2019) on the NB201 supernet, as AutoDL's NATS-algos search-cell.py runs it.

The weight step trains one uniformly random path (`dync_genotype(use_random=True)`: `random.choice`
per edge, the same path in every cell); the architecture step is DARTS's first-order step on
softmax(α) (mode 'joint': the full mixture, Adam on α). The genotype: the 100 architectures most
likely under softmax(α) (`return_topK(100, False)`: all 15,625 ranked by Σ log softmax(α), ties in
index order), each scored on one validation batch, the best kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ....space import nb201
from .darts import DartsMethod
from .paths import PathMethod, path_of


def top_k_by_log_prob(log_probs: np.ndarray, k: int) -> list[tuple[int, ...]]:
    """The k architectures with the highest Σ_e log p(op_e) under (6, 5) log-probabilities (stable order)."""
    ops = nb201.op_id_array().astype(np.int64)
    scores = log_probs[np.arange(nb201.NUM_EDGES)[None, :], ops].sum(axis=1)
    order = np.argsort(-scores, kind="stable")[:k]
    return [tuple(int(o) for o in ops[i]) for i in order]


class SetnMethod(PathMethod, DartsMethod):
    """SETN: uniform random paths for the weights, DARTS's first-order step for α, top-K candidates scored."""

    name = "setn"

    def train_mix(self) -> Any:
        """One uniformly random path, shared by every cell."""
        return path_of(self.uniform_ops().tolist(), self.engine.device)

    def candidates(self, generator: torch.Generator) -> list[tuple[int, ...]]:
        """The eval_candidates most likely architectures under softmax(α)."""
        with torch.no_grad():
            log_probs = torch.log_softmax(self.engine.net.alpha, dim=-1).double().cpu().numpy()
        return top_k_by_log_prob(log_probs, self.engine.config.eval_candidates)

    def arch_weights(self) -> Any:
        """softmax(α)."""
        return self.engine.net.arch_weights()
