"""The DARTS cell operations in plain PyTorch, in 2D and 1D (quark0/darts `cnn/operations.py`).

Layer for layer the DARTS definitions, with the module names of the original so DARTS state dicts
load unchanged:

- ``none``: ``Zero`` = ``x.mul(0.)`` (every ``stride``-th position when reducing);
- ``max_pool_3x3`` / ``avg_pool_3x3``: pooling 3, padding 1 (average with ``count_include_pad=False``);
  in the *search* network followed by a non-affine BatchNorm (`make_op(..., search=True)`);
- ``skip_connect``: ``Identity`` at stride 1, ``FactorizedReduce`` at stride 2;
- ``sep_conv_kxk``: ``SepConv`` = (ReLU → depthwise k → 1×1 → BN) twice, the first depthwise with the stride;
- ``dil_conv_kxk``: ``DilConv`` = ReLU → depthwise k, dilation 2 → 1×1 → BN;
- ``ReLUConvBN`` (cell preprocessing) = ReLU → conv (no bias) → BN.

Convolutions have no bias; BN is affine in the evaluation network and not in the search network.

Deliberate difference, invisible on even sizes: DARTS's stride-2 ``FactorizedReduce`` convolves
``x`` and ``x[:, :, 1:, 1:]``, whose outputs differ in size when a side is odd (NinaPro's 4×13,
Satellite's 23); here the shifted branch reads a zero-padded ``x`` (as NAS-Bench-201's version), so
both halves have ⌈n/2⌉ positions, like every other stride-2 op. (NAS-Bench-360's 1D copy instead
convolves the unshifted ``x`` twice.) ReLUs are not in-place (same values, safe under autograd hooks).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import InputError
from ..space.darts import PRIMITIVES
from .cells import Identity  # skip_connect at stride 1, shared with the NB201 ops

__all__ = ["OPS", "DilConv", "FactorizedReduce", "Identity", "ReLUConvBN", "SepConv", "Zero", "drop_path", "make_op",
           "pooling"]


def _dim(dim: int) -> int:
    if dim not in (1, 2):
        raise InputError(f"dim must be 1 (sequences) or 2 (images), got {dim!r}")
    return dim


def _conv(dim: int) -> type[nn.Module]:
    return nn.Conv2d if _dim(dim) == 2 else nn.Conv1d


def _bn(dim: int) -> type[nn.Module]:
    return nn.BatchNorm2d if _dim(dim) == 2 else nn.BatchNorm1d


class ReLUConvBN(nn.Module):
    """ReLU → Conv (no bias) → BN."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True,
                 dim: int = 2) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            _conv(dim)(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            _bn(dim)(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the operation."""
        return self.op(x)


class DilConv(nn.Module):
    """ReLU → dilated depthwise conv → 1×1 conv → BN."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int,
                 affine: bool = True, dim: int = 2) -> None:
        super().__init__()
        conv = _conv(dim)
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            conv(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=C_in, bias=False),
            conv(C_in, C_out, 1, padding=0, bias=False),
            _bn(dim)(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the operation."""
        return self.op(x)


class SepConv(nn.Module):
    """(ReLU → depthwise conv → 1×1 conv → BN) twice; the stride applies to the first depthwise conv."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True,
                 dim: int = 2) -> None:
        super().__init__()
        conv, bn = _conv(dim), _bn(dim)
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            conv(C_in, C_in, kernel_size, stride=stride, padding=padding, groups=C_in, bias=False),
            conv(C_in, C_in, 1, padding=0, bias=False),
            bn(C_in, affine=affine),
            nn.ReLU(inplace=False),
            conv(C_in, C_in, kernel_size, stride=1, padding=padding, groups=C_in, bias=False),
            conv(C_in, C_out, 1, padding=0, bias=False),
            bn(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the operation."""
        return self.op(x)


class Zero(nn.Module):
    """The `none` op: x.mul(0.) (so NaN/inf propagate as in the original), subsampled when reducing."""

    is_zero = True

    def __init__(self, stride: int, dim: int = 2) -> None:
        super().__init__()
        self.stride, self.dim = stride, _dim(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zeros shaped like the op's output."""
        if self.stride == 1:
            return x.mul(0.0)
        step = (slice(None), slice(None)) + (slice(None, None, self.stride),) * self.dim
        return x[step].mul(0.0)

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


class FactorizedReduce(nn.Module):
    """ReLU, two 1×1 stride-2 convs (on x and on x shifted by one position), concatenated, BN."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True, dim: int = 2) -> None:
        super().__init__()
        if C_out % 2:
            raise InputError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        conv = _conv(dim)
        self.dim = _dim(dim)
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.conv_2 = conv(C_in, C_out // 2, 1, stride=2, padding=0, bias=False)
        self.bn = _bn(dim)(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Halve the spatial size and map C_in to C_out channels."""
        x = self.relu(x)
        # x[..., 1:, 1:] zero-padded at the far edge: the original's shift, with ⌈n/2⌉ outputs for odd n too
        pad = (0, 1, 0, 1) if self.dim == 2 else (0, 1)
        shifted = nn.functional.pad(x, pad)[(slice(None), slice(None)) + (slice(1, None),) * self.dim]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def pooling(kind: str, stride: int, dim: int = 2) -> nn.Module:
    """max or avg pooling 3, padding 1 (avg: count_include_pad=False)."""
    if kind == "max":
        return (nn.MaxPool2d if _dim(dim) == 2 else nn.MaxPool1d)(3, stride=stride, padding=1)
    return (nn.AvgPool2d if _dim(dim) == 2 else nn.AvgPool1d)(3, stride=stride, padding=1, count_include_pad=False)


OpFactory = Callable[[int, int, bool, int], nn.Module]

OPS: dict[str, OpFactory] = {
    "none": lambda C, stride, affine, dim: Zero(stride, dim),
    "max_pool_3x3": lambda C, stride, affine, dim: pooling("max", stride, dim),
    "avg_pool_3x3": lambda C, stride, affine, dim: pooling("avg", stride, dim),
    "skip_connect": lambda C, stride, affine, dim: Identity() if stride == 1 else FactorizedReduce(C, C, affine, dim),
    "sep_conv_3x3": lambda C, stride, affine, dim: SepConv(C, C, 3, stride, 1, affine, dim),
    "sep_conv_5x5": lambda C, stride, affine, dim: SepConv(C, C, 5, stride, 2, affine, dim),
    "dil_conv_3x3": lambda C, stride, affine, dim: DilConv(C, C, 3, stride, 2, 2, affine, dim),
    "dil_conv_5x5": lambda C, stride, affine, dim: DilConv(C, C, 5, stride, 4, 2, affine, dim),
}
assert tuple(OPS) == PRIMITIVES, "OPS must list the DARTS operations in nb360.space.darts order"


def make_op(name: str, C: int, stride: int = 1, affine: bool = True, dim: int = 2, search: bool = False) -> nn.Module:
    """One DARTS operation by name; `search=True` follows pooling with a non-affine BN, as DARTS's MixedOp."""
    if name not in OPS:
        raise InputError(f"unknown DARTS operation {name!r}: choose one of {', '.join(PRIMITIVES)}")
    if C < 1:
        raise InputError(f"the channel count must be positive, got {C}")
    if stride not in (1, 2):
        raise InputError(f"DARTS operations take stride 1 or 2, got {stride!r}")
    op = OPS[name](C, stride, affine, _dim(dim))
    if search and "pool" in name:
        op = nn.Sequential(op, _bn(dim)(C, affine=False))
    return op


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """DARTS's drop-path: zero whole samples with probability p and scale the rest by 1/(1-p) (not in place)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x / keep * mask
