"""What GDAS, SETN, ENAS and random weight-sharing share (AutoDL `exps/NATS-algos/search-cell.py`, the script
NAS-Bench-360 ran them with: rtu715/NAS-Bench-360@34eae45 `precompute/ninapro/search-cell.py`).

- The weight step runs before the architecture step (`search_func`) and trains a sampled `Path`.
- Randomness (paths, Gumbel noise, candidates) comes from a generator reseeded each epoch from
  (seed, epoch), so a run resumed at an epoch boundary continues exactly.
- SETN, ENAS and random-ws derive their genotype as `get_best_arch` does: a list of candidate
  architectures, each scored on one batch of the validation (architecture) split in eval mode
  with only its path run, the first best kept. The score is the batch's top-1 accuracy for
  classification (as the script), else the task metric on that batch, higher is better.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, RandomSampler

from .... import metrics as M
from ....data.collate import collate_for
from ....models.supernet import Path
from ....space import nb201
from ..losses import base_dataset, to_device
from .base import ArchMethod

if TYPE_CHECKING:
    from ..engine import SupernetSearch


def seeded(*parts: int) -> torch.Generator:
    """A CPU generator from integers (the engine's seeding rule)."""
    from ..engine import _generator

    return _generator(*parts)


class _OneBatch:
    """A loader of one batch that knows its dataset (objectives read normalisers from it)."""

    def __init__(self, batch: tuple[Any, ...], dataset: Any) -> None:
        self.batch, self.dataset = batch, dataset

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        yield self.batch


@torch.no_grad()
def batch_score(engine: SupernetSearch, weights: Any, batch: tuple[Any, ...]) -> float:
    """The supernet's score on one architecture-split batch, higher is better: top-1 accuracy in [0, 1] for
    classification (search-cell.py's `val_top1 / 100`), else minus the card's metric in its lower-is-better form."""
    objective = engine.arch_obj

    def model(x: torch.Tensor) -> torch.Tensor:
        return engine.net(x, weights)

    if engine.card.problem == "multiclass":
        _, stats = objective.loss(model, batch, engine.device)
        return stats["correct"] / stats["count"]
    scores = objective.evaluate(model, _OneBatch(batch, base_dataset(engine.arch_set)), engine.device)
    return -M.lower_is_better(objective.metric, scores[objective.metric])


def path_of(ops: tuple[int, ...] | list[int], device: torch.device) -> Path:
    """A Path running the given op ids on every cell."""
    return Path(torch.tensor(list(ops), dtype=torch.long, device=device))


class PathMethod(ArchMethod):
    """Base of the NATS weight-sharing methods: weight step first, a sampled path per weight step, per-epoch RNG."""

    weights_first = True

    def __init__(self, engine: SupernetSearch) -> None:
        super().__init__(engine)
        self.generator = seeded(engine.config.seed, 0, 6)
        self._derived: tuple[int, str] | None = None

    def start_epoch(self, epoch: int) -> None:
        """Reseed the method's generator from (seed, epoch)."""
        self.generator = seeded(self.engine.config.seed, epoch, 6)

    def uniform_ops(self, rows: int | None = None) -> torch.Tensor:
        """Uniformly random op ids: (6,), or (rows, 6)."""
        shape = (nb201.NUM_EDGES,) if rows is None else (rows, nb201.NUM_EDGES)
        return torch.randint(0, nb201.NUM_OPS, shape, generator=self.generator)

    # ------------------------------------------------------------------ genotype from scored candidates
    def candidates(self, generator: torch.Generator) -> list[tuple[int, ...]]:
        """The architectures (op ids) `derive` scores; subclasses define them."""
        raise NotImplementedError

    def derive(self) -> str:
        """search-cell.py's `get_best_arch`: the first best of the candidates, each scored on one validation batch."""
        engine = self.engine
        if self._derived is not None and self._derived[0] == engine.step:
            return self._derived[1]
        generator = seeded(engine.config.seed, engine.step, 7)
        candidates = self.candidates(generator)
        was = engine.net.training
        engine.net.eval()
        try:
            batches = self._validation_batches(generator)
            scores = [batch_score(engine, path_of(ops, engine.device), to_device(next(batches), engine.device))
                      for ops in candidates]
        finally:
            engine.net.train(was)
        best = max(range(len(scores)), key=lambda i: scores[i])  # first of the best, as np.argmax
        genotype = nb201.to_str(candidates[best])
        self._derived = (engine.step, genotype)
        return genotype

    def _validation_batches(self, generator: torch.Generator) -> Iterator[Any]:
        """Shuffled validation batches of eval_batch_size, cycled (the script's valid_loader iterator)."""
        engine = self.engine
        size = engine.config.eval_batch_size or engine.config.batch_size
        while True:
            yield from DataLoader(engine.arch_set, batch_size=size, collate_fn=collate_for(engine.arch_set),
                                  sampler=RandomSampler(engine.arch_set, generator=generator))

    def eval_mix(self) -> Any:
        """The supernet is evaluated on the derived genotype's path (search-cell.py: 'dynamic' mode)."""
        return path_of(nb201.op_ids(self.derive()), self.engine.device)
