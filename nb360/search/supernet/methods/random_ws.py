"""Random weight-sharing (Li & Talwalkar, UAI 2019) on the NB201 supernet, as AutoDL's NATS-algos search-cell.py
runs it (`--algo random`).

The weight step trains a uniformly random path drawn anew in every cell (`NAS201SearchCell.forward_urs`:
per node, one op per incoming edge, redrawn while all of them are `none`). There is no
architecture parameter. The genotype: 100 distinct architectures drawn uniformly
(`return_topK(100, True)`: `random.sample` of the 15,625), each scored on one validation batch,
the best kept.
"""

from __future__ import annotations

from typing import Any

import torch

from ....models.supernet import Path
from ....space import nb201
from .paths import PathMethod

NONE = nb201.OPS.index("none")


class RandomWsMethod(PathMethod):
    """Random weight-sharing: per-cell uniform paths, random candidates scored on validation."""

    name = "random-ws"

    def node_ops(self, cells: int) -> torch.Tensor:
        """(cells, 6) op ids, each node's incoming edges redrawn until one of them is not `none`."""
        out = self.uniform_ops(cells)
        for target in range(1, nb201.NUM_NODES):
            edges = [e for e, (_s, t) in enumerate(nb201.EDGES) if t == target]
            for c in range(cells):
                while all(int(out[c, e]) == NONE for e in edges):
                    out[c, edges] = torch.randint(0, nb201.NUM_OPS, (len(edges),), generator=self.generator)
        return out

    def train_mix(self) -> Any:
        """A fresh uniform path per cell."""
        return Path(self.node_ops(len(self.engine.net.search_cells())).to(self.engine.device))

    def arch_step(self, train_batch: tuple[Any, ...], arch_batch: tuple[Any, ...], lr: float,
                  generator: torch.Generator) -> dict[str, Any]:
        """No architecture parameter to update."""
        return {"objectives": {}, "lambda": {}, "grad_norm": {}}

    def candidates(self, generator: torch.Generator) -> list[tuple[int, ...]]:
        """eval_candidates distinct architectures, uniformly at random."""
        k = min(self.engine.config.eval_candidates, nb201.NUM_ARCHS)
        picks = torch.randperm(nb201.NUM_ARCHS, generator=generator)[:k].tolist()
        return [nb201.op_ids(i) for i in picks]

    def arch_weights(self) -> Any:
        """Uniform over the ops (the sampling distribution)."""
        return torch.full((nb201.NUM_EDGES, nb201.NUM_OPS), 1.0 / nb201.NUM_OPS, device=self.engine.device)
