"""The task's loss and metrics for a search, from nb360's task objectives (`nb360.training.objectives`).

The objectives compute each task's loss and evaluation exactly as the original code (cross-entropy,
BCE, Darcy's relative L2 on decoded outputs, Cosmic's masked BCE, PSICOV's MSE; the card's metric
on a whole split). A search needs them per split: Darcy Flow's targets are normalised on the
train split and raw on val/test, so each split gets an objective bound to its own dataset. The
helpers here let the search evaluate a loss on any outputs (unrolled weights, adversarial inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ...errors import InputError
from ...training.objectives import Objective, objective_for

Batch = Sequence[Any]
Model = Callable[[torch.Tensor], torch.Tensor]


def base_dataset(dataset: Any) -> Any:
    """The dataset under Subset / ConcatDataset wrappers (for attributes such as y_normalizer)."""
    while hasattr(dataset, "dataset") and not hasattr(dataset, "y_normalizer"):
        dataset = dataset.dataset
    if hasattr(dataset, "datasets") and dataset.datasets:
        return base_dataset(dataset.datasets[0])
    return dataset


def split_objective(card: Any, dataset: Any) -> Objective:
    """The task's objective for batches of `dataset` (Darcy: bound to that split's normalizer and targets)."""
    base = base_dataset(dataset)
    return objective_for(card, base if hasattr(base, "y_normalizer") else None)


def to_device(batch: Batch, device: torch.device) -> tuple[Any, ...]:
    """A batch with its tensors on `device`."""
    return tuple(t.to(device) if isinstance(t, torch.Tensor) else t for t in batch)


def batch_loss(objective: Objective, model: Model, batch: Batch, device: torch.device) -> torch.Tensor:
    """The objective's training loss of `model` on `batch` (raises InputError when it diverged)."""
    try:
        return objective.loss(model, batch, device)[0]
    except FloatingPointError as exc:
        raise InputError(f"{exc} (during the search)") from None


def output_loss(objective: Objective, batch: Batch, device: torch.device) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """loss(outputs, _) of `batch`'s targets: the form nb360.robust's attacks take."""
    def loss(out: torch.Tensor, _target: Any) -> torch.Tensor:
        return batch_loss(objective, lambda _x: out, batch, device)

    return loss
