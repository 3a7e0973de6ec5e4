"""Adversarial robustness: FGSM (optionally with a random start) and PGD-k under an L∞ threat model.

Networks in nb360 receive *normalised* inputs (what the task loaders yield). A `ThreatModel`
declares the radius ε either in that normalised space (`space="normalized"`: the units the
network sees; the only meaningful choice for sEMG, PDE or genomics inputs) or in pixel space
(`space="pixel"`, with the loader's per-channel `mean` and `std`): the attack then runs in the
normalised coordinates with ε/std per channel and the image box [0, 1] mapped to
[(0-mean)/std, (1-mean)/std], as E2RNAS does (search-methods.md §4). It is the same attack as one
on [0, 1] images with the normalisation inside the model (torchattacks' `set_normalization_used`),
which the tests check.

FGSM: x' = x + ε·sign(∇ₓL) (Goodfellow et al.); with `random_start` the FGSM-RS of Wong et al.
(δ ~ U(-ε, ε), step 1.25ε by default, δ clipped to the ball). PGD-k (Madry et al.): random start,
k steps of size α, projection onto the ball and the box after each step. Models are attacked in
eval mode unless told otherwise; only the input gradient is taken (parameter gradients untouched).

`InputThreat` is the general form the evaluation uses (`nb360.evaluate.attacks`): ε in the units a
task card declares, converted to the network's units by an element-wise scale (zero where an input
may not be perturbed, e.g. Darcy Flow's coordinate channels) and an optional box. `pgd(...,
restarts=k, score=...)` keeps, per sample, the worst of k random-start runs (Madry et al.'s restarts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .errors import InputError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SPACES = ("normalized", "pixel")


@dataclass(frozen=True)
class ThreatModel:
    """An L∞ ball of radius `eps` in `space`, plus the valid input box."""

    eps: float
    space: str = "normalized"
    mean: tuple[float, ...] | None = None  # per channel, pixel space only
    std: tuple[float, ...] | None = None
    clamp: tuple[float, float] | None = None  # box in the space's units; pixel space defaults to (0, 1)

    def __post_init__(self) -> None:
        if not (self.eps >= 0) or self.eps != self.eps or self.eps == float("inf"):
            raise InputError(f"eps must be a finite non-negative number, got {self.eps}")
        if self.space not in SPACES:
            raise InputError(f"unknown threat-model space {self.space!r}: choose one of {', '.join(SPACES)}")
        if self.space == "pixel":
            if self.mean is None or self.std is None or len(self.mean) != len(self.std):
                raise InputError("a pixel-space threat model needs the loader's per-channel mean and std (same "
                                 "length); use space='normalized' for inputs without a pixel scale")
            if min(self.std) <= 0:
                raise InputError(f"std must be positive, got {self.std}")
        if self.clamp is not None and not self.clamp[0] < self.clamp[1]:
            raise InputError(f"clamp must be (low, high) with low < high, got {self.clamp}")

    def _per_channel(self, values: Sequence[float], x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != len(values):
            raise InputError(f"the threat model has {len(values)} channels but the input has shape {tuple(x.shape)}")
        t = torch.as_tensor(values, dtype=x.dtype, device=x.device)
        return t.view(1, -1, *([1] * (x.dim() - 2)))

    def scale(self, x: torch.Tensor, value: float) -> torch.Tensor | float:
        """A length (ε or a step) in normalised input units for a batch like `x`."""
        if self.space == "normalized":
            return value
        return value / self._per_channel(self.std, x)

    def box(self, x: torch.Tensor) -> tuple[Any, Any] | None:
        """(low, high) of valid inputs in normalised units, or None for no box."""
        if self.space == "normalized":
            return self.clamp
        low, high = self.clamp or (0.0, 1.0)
        mean, std = self._per_channel(self.mean, x), self._per_channel(self.std, x)
        return (low - mean) / std, (high - mean) / std


class InputThreat:
    """An L∞ ball of radius `eps` in a task's declared `unit`, converted element-wise to the network's units.

    `to_model` (broadcastable to one input, e.g. (C, 1, 1) or (C, H, W), or to a batch) is the length, in
    the network's input units, of one declared unit; zero entries are inputs the attack may not touch.
    `low`/`high` bound valid inputs in the network's units (None: no box).
    """

    def __init__(self, eps: float, unit: str, to_model: torch.Tensor, low: torch.Tensor | None = None,
                 high: torch.Tensor | None = None) -> None:
        if not (eps >= 0) or eps == float("inf"):
            raise InputError(f"eps must be a finite non-negative number, got {eps}")
        if not torch.isfinite(to_model).all() or (to_model < 0).any():
            raise InputError("the unit conversion must be finite and non-negative")
        self.eps, self.space, self.to_model = float(eps), unit, to_model.detach().float()
        self.low, self.high = low, high

    def scale(self, x: torch.Tensor, value: float) -> torch.Tensor:
        """A length (ε or a step) in the network's input units for a batch like `x`."""
        t = self.to_model.to(device=x.device, dtype=x.dtype)
        if t.dim() > x.dim() or any(a not in (1, b) for a, b in zip(reversed(t.shape), reversed(x.shape))):
            raise InputError(f"the threat model's scale {tuple(t.shape)} does not fit inputs of shape {tuple(x.shape)}")
        return value * t

    def restricted(self, mask: torch.Tensor) -> InputThreat:
        """The same threat with the radius zeroed where `mask` is 0 (e.g. PSICOV's padding, per sample)."""
        return InputThreat(self.eps, self.space, self.to_model.to(mask.device) * mask, self.low, self.high)

    def box(self, x: torch.Tensor) -> tuple[Any, Any] | None:
        """(low, high) of valid inputs in the network's units, or None."""
        if self.low is None and self.high is None:
            return None
        low = self.low if self.low is not None else torch.tensor(float("-inf"))
        high = self.high if self.high is not None else torch.tensor(float("inf"))
        return low.to(device=x.device, dtype=x.dtype), high.to(device=x.device, dtype=x.dtype)


def _clip_box(x: torch.Tensor, box: tuple[Any, Any] | None) -> torch.Tensor:
    if box is None:
        return x
    low, high = box
    return torch.max(torch.min(x, torch.as_tensor(high, dtype=x.dtype, device=x.device)),
                     torch.as_tensor(low, dtype=x.dtype, device=x.device))


def _project(x_adv: torch.Tensor, x: torch.Tensor, eps: torch.Tensor | float, box: Any) -> torch.Tensor:
    """Back into the ε-ball around x (per channel) and the box."""
    delta = torch.max(torch.min(x_adv - x, torch.as_tensor(eps, dtype=x.dtype, device=x.device)),
                      -torch.as_tensor(eps, dtype=x.dtype, device=x.device))
    return _clip_box(x + delta, box)


def _uniform_like(x: torch.Tensor, eps: torch.Tensor | float, generator: torch.Generator | None) -> torch.Tensor:
    """U(-ε, ε) noise shaped like x, drawn on the CPU from `generator` when one is given (reproducible)."""
    if generator is not None:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    else:
        noise = torch.rand(x.shape, dtype=x.dtype, device=x.device)
    return (2 * noise - 1) * torch.as_tensor(eps, dtype=x.dtype, device=x.device)


def _input_grad(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                loss_fn: LossFn) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(model(x), y)
        if not loss.requires_grad:  # the output does not depend on the input (e.g. an NB201 cell of `none` edges)
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def fgsm_step(x: torch.Tensor, grad: torch.Tensor, threat: Any, *, step_size: float | None = None,
              start: torch.Tensor | None = None) -> torch.Tensor:
    """One signed-gradient step from x (+ an optional start perturbation), projected to the ball and the box."""
    eps = threat.scale(x, threat.eps)
    step = threat.scale(x, threat.eps if step_size is None else step_size)
    base = x if start is None else start
    return _project(base + step * grad.sign(), x, eps, threat.box(x)).detach()


def fgsm(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, threat: Any, *,
         loss_fn: LossFn = F.cross_entropy, random_start: bool = False, step_size: float | None = None,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """FGSM adversarial inputs (FGSM-RS with `random_start`: δ ~ U(-ε, ε), step 1.25ε unless `step_size`)."""
    eps = threat.scale(x, threat.eps)
    start = None
    if random_start:
        start = _clip_box(x + _uniform_like(x, eps, generator), threat.box(x))
        step_size = 1.25 * threat.eps if step_size is None else step_size
    grad = _input_grad(model, x if start is None else start, y, loss_fn)
    return fgsm_step(x, grad, threat, step_size=step_size, start=start)


ScoreFn = Callable[[torch.Tensor], torch.Tensor]  # adversarial batch -> (N,) badness per sample (higher: worse)


def pgd(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, threat: Any, *,
        steps: int = 10, step_size: float | None = None, random_start: bool = True,
        loss_fn: LossFn = F.cross_entropy, generator: torch.Generator | None = None, restarts: int = 1,
        score: ScoreFn | None = None) -> torch.Tensor:
    """PGD-k adversarial inputs: optional random start, `steps` signed steps of `step_size` (default 2.5ε/k).

    With `restarts` > 1 (random start only), each sample keeps the run whose `score` (per-sample
    badness of the adversarial input, higher is worse for the model) is highest.
    """
    if steps < 1:
        raise InputError(f"PGD needs at least one step, got {steps}")
    if restarts < 1 or (restarts > 1 and (not random_start or score is None)):
        raise InputError(f"PGD restarts must be >= 1 and need a random start and a per-sample score, got {restarts}")
    step_size = 2.5 * threat.eps / steps if step_size is None else step_size
    eps = threat.scale(x, threat.eps)
    alpha = threat.scale(x, step_size)
    box = threat.box(x)
    best, best_score = None, None
    for _ in range(restarts):
        x_adv = x.detach()
        if random_start:
            x_adv = _clip_box(x_adv + _uniform_like(x, eps, generator), box)
        for _ in range(steps):
            grad = _input_grad(model, x_adv, y, loss_fn)
            x_adv = _project(x_adv + alpha * grad.sign(), x, eps, box).detach()
        if restarts == 1:
            return x_adv
        assert score is not None
        with torch.no_grad():
            s = score(x_adv).reshape(-1)
        if best is None or best_score is None:
            best, best_score = x_adv, s
            continue
        worse = s > best_score
        best = torch.where(worse.view(-1, *([1] * (x.dim() - 1))), x_adv, best)
        best_score = torch.where(worse, s, best_score)
    assert best is not None
    return best


def attack(name: str, model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
           threat: ThreatModel, **options: Any) -> torch.Tensor:
    """Run attack `name` ("fgsm", "fgsm-rs" or "pgd") with its options."""
    if name == "fgsm":
        return fgsm(model, x, y, threat, **options)
    if name == "fgsm-rs":
        return fgsm(model, x, y, threat, random_start=True, **options)
    if name == "pgd":
        return pgd(model, x, y, threat, **options)
    raise InputError(f"unknown attack {name!r}: choose fgsm, fgsm-rs or pgd")


@torch.no_grad()
def _predict(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return model(x)


def evaluate_robustness(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                        threat: ThreatModel, *, pgd_steps: int = 10, pgd_step_size: float | None = None,
                        pgd_random_start: bool = True, fgsm_random_start: bool = False, seed: int = 0,
                        device: str | torch.device | None = None) -> dict[str, Any]:
    """Clean, FGSM and PGD-k top-1 accuracy (%) of a classifier over `batches` of (normalised inputs, labels)."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    correct = {"clean": 0, "fgsm": 0, "pgd": 0}
    total = 0
    try:
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            if y.dim() != 1:
                raise InputError(f"robust accuracy needs class labels (N,), got shape {tuple(y.shape)}")
            correct["clean"] += int((_predict(model, x).argmax(1) == y).sum())
            x_f = fgsm(model, x, y, threat, random_start=fgsm_random_start, generator=generator)
            correct["fgsm"] += int((_predict(model, x_f).argmax(1) == y).sum())
            x_p = pgd(model, x, y, threat, steps=pgd_steps, step_size=pgd_step_size, random_start=pgd_random_start,
                      generator=generator)
            correct["pgd"] += int((_predict(model, x_p).argmax(1) == y).sum())
            total += len(y)
    finally:
        model.train(was_training)
    if total == 0:
        raise InputError("no samples to evaluate")
    out: dict[str, Any] = {f"{k}_accuracy": 100.0 * v / total for k, v in correct.items()}
    out.update({"samples": total, "eps": threat.eps, "space": threat.space, "pgd_steps": pgd_steps,
                "pgd_step_size": 2.5 * threat.eps / pgd_steps if pgd_step_size is None else pgd_step_size,
                "pgd_random_start": pgd_random_start, "fgsm_random_start": fgsm_random_start})
    return out
