"""The threat model of a task, from its card's [robustness] section, in the network's input units.

ε is declared in the card's unit (or one the user gives) and converted through the task's own
normalisation (`nb360.tasks.robustness` lists the units):

- pixel:     ε / std per channel and the [0, 1] box mapped to [(0 - mean)/std, (1 - mean)/std], with the
             loader's mean and std (`nb360.data.<task>.MEAN/STD`), as the E2RNAS code does;
- model:     ε as given, in the values the network receives;
- train-std: ε × the standard deviation of the training inputs per channel (measured on the first
             TRAIN_STD_ITEMS training items, with a fixed seed for any augmentation);
- raw:       ε / (std + eps) per grid point through the training set's pointwise normaliser (Darcy Flow's
             `x_normalizer`), so the radius is in the released quantity's units.

Channels the card does not list under `channels` get a zero radius (they are not perturbed).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from .errors import InputError
from .robust import InputThreat
from .tasks import TaskCard

TRAIN_STD_ITEMS = 512


def robustness_of(card: TaskCard) -> dict[str, Any]:
    """The card's [robustness] section; InputError (with the card's reason) where the task is not attacked."""
    r = card.robustness
    if not r:
        raise InputError(f"task card {card.name} defines no [robustness] section, so nb360 cannot attack it; add one "
                         "(tasks/README.md)")
    if not r["attackable"]:
        extra = f" Alternative: {r['relaxation']}" if r.get("relaxation") else ""
        raise InputError(f"{card.name} is not attacked: {r['reason']}.{extra}")
    return r


def _input_shape(card: TaskCard) -> tuple[int, ...]:
    return (card.in_channels, *([1] * len(card.input_size)))


def _pixel_stats(card: TaskCard) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        module = importlib.import_module(f"nb360.data.{card.name}")
    except ImportError:
        module = None
    mean, std = getattr(module, "MEAN", None), getattr(module, "STD", None)
    if mean is None or std is None:
        raise InputError(f"{card.name} has no pixel normalisation (its loader declares no MEAN/STD): state ε in "
                         "another unit (--eps-unit model or train-std)")
    shape = _input_shape(card)
    return torch.tensor(mean).view(shape), torch.tensor(std).view(shape)


def train_std(card: TaskCard, train_set: Any, items: int = TRAIN_STD_ITEMS) -> torch.Tensor:
    """Per-channel standard deviation of the first `items` training inputs (augmentation drawn from seed 0)."""
    if train_set is None or len(train_set) == 0:
        raise InputError(f"{card.name}: no training inputs to measure the train-std unit on")
    state = torch.get_rng_state()
    torch.manual_seed(0)
    try:
        xs = [train_set[i][0] for i in range(min(items, len(train_set)))]
    finally:
        torch.set_rng_state(state)
    x = torch.stack(xs).double()
    dims = [0, *range(2, x.dim())]
    std = x.std(dim=dims)
    if not torch.isfinite(std).all() or (std <= 0).any():
        raise InputError(f"{card.name}: the training inputs have a zero or undefined spread in some channel, so the "
                         "train-std unit is undefined; state ε in model units (--eps-unit model)")
    return std.float().view(_input_shape(card))


def _raw_normalizer(card: TaskCard, train_set: Any) -> Any:
    from .search.supernet.losses import base_dataset

    normalizer = getattr(base_dataset(train_set), "x_normalizer", None)
    if normalizer is None:
        raise InputError(f"{card.name}: the raw unit needs the loader's pointwise input normaliser (x_normalizer); "
                         "this task has none: use --eps-unit model or train-std")
    return normalizer


def build_threat(card: TaskCard, train_set: Any, eps: float | None = None,
                 unit: str | None = None) -> tuple[InputThreat, dict[str, Any]]:
    """(InputThreat in the network's units, a JSON description) of the card's threat model (ε and unit overridable)."""
    r = robustness_of(card)
    unit = unit or r["unit"]
    eps = float(r["eps"] if eps is None else eps)
    if not eps >= 0 or eps == float("inf"):
        raise InputError(f"--eps must be a finite non-negative number, got {eps}")
    c = card.in_channels
    shape = _input_shape(card)
    box = r.get("box") if unit == r["unit"] else None  # a box is declared in the card's own unit
    low = high = None
    if unit == "pixel":
        mean, std = _pixel_stats(card)
        to_model = 1.0 / std
        lo, hi = box or (0.0, 1.0)
        low, high = (lo - mean) / std, (hi - mean) / std
        how = "ε / std per channel, box [(0 - mean)/std, (1 - mean)/std] (the loader's normalisation)"
    elif unit == "model":
        to_model = torch.ones(shape)
        if box:
            low, high = torch.full(shape, float(box[0])), torch.full(shape, float(box[1]))
        how = "ε as given, in the network's input values"
    elif unit == "train-std":
        to_model = train_std(card, train_set)
        how = f"ε × the per-channel standard deviation of the first {TRAIN_STD_ITEMS} training inputs"
    elif unit == "raw":
        norm = _raw_normalizer(card, train_set)
        scale = 1.0 / (norm.std.float() + norm.eps)  # (H, W): model units per raw unit at each grid point
        to_model = scale.expand(c, *scale.shape).clone()
        if box:
            mean = norm.mean.float()
            low = ((box[0] - mean) * scale).expand(c, *scale.shape).clone()
            high = ((box[1] - mean) * scale).expand(c, *scale.shape).clone()
        how = "ε / (std + 1e-5) per grid point through the training set's pointwise normaliser"
    else:
        raise InputError(f"unknown ε unit {unit!r}: choose pixel, model, train-std or raw")
    channels = r.get("channels")
    if channels is not None:
        keep = torch.zeros(c, dtype=torch.bool)
        keep[channels] = True
        view = keep.view(c, *([1] * (to_model.dim() - 1)))
        to_model = to_model * view
        if low is not None and high is not None:  # untouched channels are not boxed
            low = torch.where(view, low, torch.tensor(float("-inf")))
            high = torch.where(view, high, torch.tensor(float("inf")))
    threat = InputThreat(eps, unit, to_model, low, high)
    per_channel = (eps * to_model.double()).reshape(c, -1)
    description = {
        "eps": eps, "unit": unit, "eps_text": r["eps_text"] if eps == r.get("eps") and unit == r["unit"] else f"{eps:g}",
        "card_default": eps == r.get("eps") and unit == r["unit"], "norm": "linf", "conversion": how,
        "eps_model_units_per_channel": [[float(v.min()), float(v.max())] for v in per_channel],
        "box": box if box and unit in ("pixel", "model", "raw") else None, "perturb": r["perturb"],
        "channels": channels, "region": r.get("region"), "source": r["source"],
    }
    return threat, description


SEARCH_EPS_SPACES = ("card", "pixel", "normalized")


def search_threat(card: TaskCard, train_set: Any, eps: float | None, space: str) -> Any:
    """The threat model of a search's adversarial objective (E2RNAS) and its found-architecture attacks.

    "card": the card's [robustness] ε and unit (E2RNAS's own 2/255 in pixels on the image tasks);
    "pixel": ε (default 2/255) in [0, 1] pixels through the loader's mean/std; "normalized": ε (default
    2/255) in the network's input units as they are (nb360's earlier default, kept for comparison).
    """
    if space not in SEARCH_EPS_SPACES:
        raise InputError(f"unknown ε space {space!r}: choose one of {', '.join(SEARCH_EPS_SPACES)}")
    if space == "normalized":
        from .robust import ThreatModel

        return ThreatModel(2 / 255 if eps is None else eps, "normalized")
    if space == "pixel":
        return build_threat(card, train_set, 2 / 255 if eps is None else eps, "pixel")[0]
    return build_threat(card, train_set, eps, None)[0]
