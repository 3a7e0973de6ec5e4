"""Networks: the NB201 cell network and supernet (2D point, 2D dense, 1D point) and the NB360 backbones.

`build(task, arch)` builds the NB201 network for an arch (index, arch string or op tuple);
`build(task, genotype=G)` the DARTS evaluation network of a DARTS-space genotype (20 cells, C=36 by
default; auxiliary head, drop-path); `build(task, backbone="wrn" | "resnet1d" | "default")` a
baseline backbone; `build_supernet(task)` the NB201 weight-sharing supernet and
`build_darts_supernet(task)` the DARTS-space one; `SizeNetwork(channels, num_outputs)` is the network of
NATS-Bench's size space. Input channels, output size and head come from the task card
(a `TaskCard` or a task name). Counting: `count_parameters`, `count_flops`, `cost_model`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import InputError
from ..space import nb201
from .counting import CostModel, cost_model, count_flops, count_parameters, expected_flops, expected_params
from .darts_eval import DartsNetwork, count_parameters_darts
from .darts_search import DartsSupernet, MixWeights
from .dense import TOPOLOGIES, topology_layout
from .nb201 import InferCell, TinyNetwork
from .resnet1d import ResNet1D
from .sss import SizeNetwork
from .supernet import SearchCell, Supernet
from .wrn import DenseWideResNet, WideResNet

__all__ = [
    "BACKBONES", "TOPOLOGIES", "CostModel", "DartsNetwork", "DartsSupernet", "DenseWideResNet", "InferCell",
    "MixWeights", "ResNet1D", "SearchCell", "SizeNetwork", "Supernet", "TinyNetwork",
    "WideResNet", "build", "build_darts_supernet", "build_supernet", "cost_model", "count_flops", "count_parameters",
    "count_parameters_darts", "default_backbone", "expected_flops", "expected_params", "list_backbones",
]

# backbone name -> topology -> constructor(num_outputs, in_channels, **options)
BACKBONES: dict[str, dict[str, Callable[..., nn.Module]]] = {
    "wrn": {"point2d": WideResNet, "dense2d": DenseWideResNet},  # WRN-16-4 by default
    "resnet1d": {"point1d": ResNet1D},
}
_DEFAULT_BACKBONE = {"point2d": "wrn", "dense2d": "wrn", "point1d": "resnet1d"}


def list_backbones() -> dict[str, tuple[str, ...]]:
    """Backbone names and the task topologies each supports."""
    return {name: tuple(by_topology) for name, by_topology in BACKBONES.items()}


def default_backbone(topology: str) -> str:
    """The NB360 baseline backbone of a topology: WRN-16-4 for 2D tasks, the 1D ResNet for 1D tasks."""
    topology_layout(topology)
    return _DEFAULT_BACKBONE[topology]


def _resolve_task(task: Any) -> Any:
    if isinstance(task, str):
        try:
            from ..tasks import get_task
        except ImportError as exc:
            raise InputError(f"cannot look up task {task!r}: the task registry (nb360.tasks.get_task) is not "
                             "available; pass a TaskCard instead") from exc
        return get_task(task)
    missing = [a for a in ("topology", "in_channels", "input_size", "num_outputs") if not hasattr(task, a)]
    if missing:
        raise InputError(f"build() needs a task name or a TaskCard; {type(task).__name__} lacks {', '.join(missing)}")
    topology_layout(task.topology)
    return task


def _construct(factory: Callable[..., nn.Module], what: str, *args: Any, **options: Any) -> nn.Module:
    try:
        inspect.signature(factory).bind(*args, **options)
    except TypeError as exc:  # an option the constructor does not take
        where = f"{factory.__module__}.{factory.__qualname__}"
        raise InputError(f"bad option for {what}: {exc}; see help({where})") from exc
    return factory(*args, **options)


def _annotate(model: nn.Module, card: Any) -> nn.Module:
    # The example input shape (channels first, no batch), for count_flops and summaries.
    model.input_shape = (int(card.in_channels), *(int(s) for s in card.input_size))
    model.task_name = getattr(card, "name", None)
    return model


def build(task: Any, arch: nb201.Arch | None = None, *, backbone: str | None = None, genotype: Any = None,
          C: int | None = None, N: int = 5, **options: Any) -> nn.Module:
    """Build the network for a task: the NB201 TinyNetwork of `arch`, the DARTS network of `genotype`, or `backbone`.

    task: a TaskCard or task name. arch: index, arch string or op tuple (NB201 network with C
    (default 16), N). genotype: a DARTS-space genotype (Genotype, its text, JSON mapping or a
    published name such as "DARTS_V2"): the DARTS evaluation network with C (default 36) and
    `layers` (default 20) cells. backbone: "wrn" (2D; WRN-16-4, dense variant on dense tasks),
    "resnet1d" (1D), or "default". options go to the constructor: e.g. affine/track_running_stats
    (NB201), layers/auxiliary/drop_path_prob (DARTS), depth/widen_factor/drop_rate/pooling (WRN),
    third_skip/mid_channels (ResNet1D).
    """
    card = _resolve_task(task)
    if sum(x is not None for x in (arch, backbone, genotype)) != 1:
        raise InputError("build() takes exactly one of arch (an NB201 cell), genotype (a DARTS-space genotype) or "
                         f"backbone ({', '.join(BACKBONES)} or 'default')")
    topology = card.topology
    if genotype is not None:
        net = _construct(DartsNetwork, "the DARTS network", genotype, card.num_outputs, card.in_channels,
                         36 if C is None else C, topology=topology, **options)
        return _annotate(net, card)
    if arch is not None:
        C = 16 if C is None else C
        net = _construct(TinyNetwork, "the NB201 network", arch, card.num_outputs, card.in_channels, C, N, topology,
                         **options)
        return _annotate(net, card)
    name = default_backbone(topology) if backbone == "default" else backbone
    if name not in BACKBONES:
        raise InputError(f"unknown backbone {backbone!r}: choose one of {', '.join(BACKBONES)} or 'default'")
    if topology not in BACKBONES[name]:
        raise InputError(f"backbone {name!r} does not fit {topology} task {getattr(card, 'name', '')!r}: it supports "
                         f"{', '.join(BACKBONES[name])}; use {default_backbone(topology)!r}")
    if name == "wrn" and options.get("pooling") == "original" and getattr(card, "name", None) == "fsd50k":
        options["pooling"] = "global"  # NB360 trained FSD50K with Backbone_Audio, whose pooling is global
    net = _construct(BACKBONES[name][topology], f"backbone {name!r}", card.num_outputs, card.in_channels, **options)
    return _annotate(net, card)


def build_supernet(task: Any, *, C: int = 16, N: int = 5, **options: Any) -> Supernet:
    """Build the NB201 weight-sharing supernet for a task (options: affine, track_running_stats, mixed)."""
    card = _resolve_task(task)
    net = _construct(Supernet, "the NB201 supernet", card.num_outputs, card.in_channels, C, N, card.topology, **options)
    return _annotate(net, card)


def build_darts_supernet(task: Any, *, C: int = 16, layers: int = 8, **options: Any) -> DartsSupernet:
    """Build the DARTS-space supernet for a task (options: partial_channels, edge_weights, shared_relu)."""
    card = _resolve_task(task)
    net = _construct(DartsSupernet, "the DARTS-space supernet", card.num_outputs, card.in_channels, C, layers,
                     card.topology, **options)
    return _annotate(net, card)
