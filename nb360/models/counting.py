"""Parameter and FLOP counts, and the differentiable expected size / FLOPs of the NB201 supernet.

FLOP rule (NAS-Bench-201's, AutoDL `xautodl/utils/flop_benchmark.py`, the rule behind the `flop`
numbers in the NB201 / NATS-Bench / NB360 tables): multiply-adds of convolutions and Linear
layers for one sample at the given input size, nothing else (BN, ReLU, pooling, additions count 0):

- Conv (1D or 2D): k_numel · C_in / groups · C_out · output positions, plus C_out · output
  positions when the conv has a bias;
- Linear: in · out (+ out with a bias) per position it is applied at.

The one documented difference: NB201's counter hooks the Linear once per sample. That is exact
for point networks (one position) but for the dense networks' per-pixel head it undercounts by
(H·W − 1)·(in·out + out); `count_flops` counts every position, and
`linear_once_per_sample=True` reproduces the original count (what NB360's Darcy table records).
Tables report FLOPs in millions (`count_flops(...) / 1e6`) and parameters in millions (/1e6).

Expected size (E2RNAS): with architecture weights p (6×5, rows summing to 1, e.g. softmax(α)),
`CostModel.expected(p) = base + sum_{e,o} p[e,o] · table[e,o]`, where `table[e,o]` is the cost of
operation o on edge e summed over every cell of the evaluation network and `base` is everything
outside the cell edges (stem, reduction blocks, head). It is linear in p and exact: for a one-hot p
it equals the count of the discrete network. E2RNAS (search-methods.md §1.4, §6) uses
`|target − expected(p) / scale|` as its size objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from ..ops.cells import make_op
from ..space import nb201
from .nb201 import InferCell, TinyNetwork


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (each shared tensor once), as NB201 counts them."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: Sequence[int], *, linear_once_per_sample: bool = False,
                **forward_kwargs: Any) -> int:
    """Multiply-adds of conv and Linear layers for one sample of shape `input_shape` (channels first, no batch)."""
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise InputError(f"input_shape must be (C, *spatial) with positive sizes, got {tuple(input_shape)}")
    total = 0

    def conv_hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        positions = output[0, 0].numel()
        per_position = module.weight[0, 0].numel() * (module.in_channels // module.groups) * module.out_channels
        total += per_position * positions + (module.out_channels * positions if module.bias is not None else 0)

    def linear_hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        positions = 1 if linear_once_per_sample else output[0].numel() // module.out_features
        bias = module.out_features if module.bias is not None else 0
        per_position = module.in_features * module.out_features + bias
        total += per_position * positions

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    reference = next(model.parameters(), None)
    kwargs = {} if reference is None else {"device": reference.device, "dtype": reference.dtype}
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *shape), **kwargs), **forward_kwargs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


@dataclass(frozen=True)
class CostModel:
    """A cost linear in the architecture weights: base + sum(weights * table)."""

    base: float  # cost outside the cell edges
    table: torch.Tensor  # (6, 5): cost of op o on edge e, summed over all cells
    kind: str  # "params" or "flops"

    def expected(self, weights: torch.Tensor) -> torch.Tensor:
        """The expected cost under (6, 5) architecture weights; differentiable in `weights`."""
        if weights.shape != self.table.shape:
            raise InputError(f"architecture weights must have shape {tuple(self.table.shape)}, got "
                             f"{tuple(weights.shape)}")
        table = self.table.to(device=weights.device, dtype=weights.dtype)
        return self.base + (weights * table).sum()

    def of(self, arch: nb201.Arch) -> float:
        """The exact cost of one discrete arch."""
        return self.base + float(sum(self.table[e, o] for e, o in enumerate(nb201.op_ids(arch))))


def _spec(net: Any) -> dict[str, Any]:
    keys = ("num_outputs", "in_channels", "C", "N", "topology")
    try:
        return {k: getattr(net, k) for k in keys}
    except AttributeError as exc:
        raise InputError(f"cost models need an NB201 TinyNetwork or Supernet, got {type(net).__name__}") from exc


def cost_model(net: nn.Module, kind: str = "params", input_size: Sequence[int] | None = None,
               affine: bool = True, track_running_stats: bool = True,
               linear_once_per_sample: bool = False) -> CostModel:
    """The expected-cost model of an NB201 network shape (a Supernet or TinyNetwork supplies C, N, task shape).

    Costs are those of the *evaluation* network (affine BN, convs without bias) unless `affine=False`.
    `kind="flops"` needs the spatial `input_size` ((H, W) or (L,)). Build it once per search and call
    `.expected(weights)` every step; it is cheap and differentiable.
    """
    if kind not in ("params", "flops"):
        raise InputError(f"kind must be 'params' or 'flops', got {kind!r}")
    spec = _spec(net)
    skeleton = TinyNetwork(("none",) * nb201.NUM_EDGES, affine=affine, track_running_stats=track_running_stats,
                           **spec)
    cells = [c for c in skeleton.cells if isinstance(c, InferCell)]
    dim = skeleton.dim
    spatial: dict[int, tuple[int, ...]] = {}
    if kind == "flops":
        if input_size is None or len(input_size) != dim:
            raise InputError(f"FLOP cost models need the {dim}D input size of the task, got {input_size!r}")
        hooks = [cell.register_forward_hook(lambda m, i, o, k=k: spatial.__setitem__(k, tuple(i[0].shape[2:])))
                 for k, cell in enumerate(cells)]
        try:
            base = count_flops(skeleton, (spec["in_channels"], *input_size),
                               linear_once_per_sample=linear_once_per_sample)
        finally:
            for h in hooks:
                h.remove()
    else:
        base = count_parameters(skeleton)

    cache: dict[tuple, int] = {}

    def op_cost(op: str, c_in: int, c_out: int, size: tuple[int, ...]) -> int:
        key = (op, c_in, c_out, size)
        if key not in cache:
            module = make_op(op, c_in, c_out, 1, affine, track_running_stats, dim)
            cache[key] = count_parameters(module) if kind == "params" else count_flops(module, (c_in, *size))
        return cache[key]

    table = torch.zeros(nb201.NUM_EDGES, nb201.NUM_OPS, dtype=torch.float64)
    for k, cell in enumerate(cells):
        size = spatial.get(k, ())
        for e, (source, _t) in enumerate(nb201.EDGES):
            c_in = cell.in_dim if source == 0 else cell.out_dim
            for o, op in enumerate(nb201.OPS):
                table[e, o] += op_cost(op, c_in, cell.out_dim, size)
    return CostModel(base=float(base), table=table, kind=kind)


def expected_params(net: nn.Module, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Expected parameter count of the evaluation network under `weights` (default: the supernet's softmax(α)).

    Convenience for one-off use; a search loop should build `cost_model(net)` once.
    """
    if weights is None:
        if not hasattr(net, "arch_weights"):
            raise InputError("pass architecture weights, or a Supernet whose softmax(α) to use")
        weights = net.arch_weights()
    return cost_model(net, "params").expected(weights)


def expected_flops(net: nn.Module, input_size: Sequence[int], weights: torch.Tensor | None = None) -> torch.Tensor:
    """Expected FLOPs (multiply-adds, one sample at `input_size`) under `weights` (default softmax(α))."""
    if weights is None:
        if not hasattr(net, "arch_weights"):
            raise InputError("pass architecture weights, or a Supernet whose softmax(α) to use")
        weights = net.arch_weights()
    return cost_model(net, "flops", input_size).expected(weights)
