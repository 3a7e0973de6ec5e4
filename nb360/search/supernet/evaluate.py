"""Scores of a network on one split, clean and under FGSM / PGD, with the task's objective.

Used on the architecture a search found, as the discretised supernet with inherited weights (a
one-shot proxy: no retraining). The scores are the task objective's evaluation of the split
(`nb360.training.objectives`: loss, the card's metric, accuracy where defined) on clean inputs
and on the adversarial inputs of each batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from ...robust import ThreatModel, fgsm, pgd
from ...training.objectives import Objective
from .losses import output_loss, to_device


class AttackedLoader:
    """A loader whose batches have their inputs replaced by adversarial ones (same dataset attribute)."""

    def __init__(self, loader: Any, attack: Callable[[tuple[Any, ...]], torch.Tensor], device: torch.device) -> None:
        self.loader, self.dataset, self.attack, self.device = loader, loader.dataset, attack, device

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for batch in self.loader:
            batch = to_device(batch, self.device)
            yield (self.attack(batch), *batch[1:])


def evaluate_network(net: torch.nn.Module, loader: Any, objective: Objective, threat: ThreatModel | None = None, *,
                     pgd_steps: int = 10, seed: int = 0, device: str | torch.device = "cpu",
                     input_dims: int | None = None) -> dict[str, dict[str, float]]:
    """{"clean": scores, "fgsm": scores, "pgd": scores} of `net` (eval mode) on `loader`'s split."""
    device = torch.device(device)
    was_training = net.training
    net.eval()
    generator = torch.Generator().manual_seed(seed)

    def attacked(kind: str) -> Callable[[tuple[Any, ...]], torch.Tensor]:
        def run(batch: tuple[Any, ...]) -> torch.Tensor:
            x = batch[0]
            if input_dims is not None and x.dim() != input_dims:  # e.g. FSD50K eval items hold every chunk of a clip
                raise _NotAttackable
            loss = output_loss(objective, batch, device)
            if kind == "fgsm":
                return fgsm(net, x, batch[1], threat, loss_fn=loss)
            return pgd(net, x, batch[1], threat, steps=pgd_steps, loss_fn=loss, generator=generator)

        return run

    try:
        out = {"clean": objective.evaluate(net, loader, device)}
        if threat is not None:
            try:
                for kind in ("fgsm", "pgd"):
                    out[kind] = objective.evaluate(net, AttackedLoader(loader, attacked(kind), device), device)
            except _NotAttackable:
                out.pop("fgsm", None)
    finally:
        net.train(was_training)
    return out


class _NotAttackable(Exception):
    """The evaluation items are not single network inputs, so they are scored clean only."""


def headline(card: Any, scores: dict[str, float]) -> tuple[str, float]:
    """(name, value) of the score a plot shows: top-1 accuracy (%) for classification, else the card's metric."""
    if card.problem == "multiclass" and "accuracy" in scores:
        return "accuracy (%)", scores["accuracy"]
    if card.metric.name in scores:
        return card.metric.name, scores[card.metric.name]
    return "loss", scores["loss"]
