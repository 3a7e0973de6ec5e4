"""Reference NAS-Bench-201 cell operations in plain PyTorch, in 2D and 1D.

These are the ground truth the fused kernels are checked against, so they copy the original
(`D-X-Y/AutoDL-Projects` `xautodl/models/cell_operations.py`, the copy NAS-Bench-360 trained its
tables with) layer for layer, including module names, so AutoDL state dicts load unchanged:

- ``none``: ``Zero``, ``x.mul(0.)`` (zeros of C_out channels when channels change);
- ``skip_connect``: ``Identity`` when stride 1 and C_in == C_out, else ``FactorizedReduce``;
- ``nor_conv_1x1`` / ``nor_conv_3x3``: ``ReLUConvBN`` = ReLU → Conv → BN, where the conv has a bias
  exactly when the BN is not affine (``bias=not affine``, as the original);
- ``avg_pool_3x3``: ``Pooling`` = (ReLUConvBN 1×1 only when C_in != C_out) → AvgPool 3, padding 1,
  ``count_include_pad=False``; no BN after the pool.

``affine`` / ``track_running_stats`` are configurable: search uses ``affine=False``, evaluation
``affine=True``. ``dim=1`` builds the same operations with Conv1d / BatchNorm1d / AvgPool1d.

Deliberate differences from the original, each numerically invisible where the original works:
ReLUs are not in-place (same values; safe under hooks and autograd), in the networks that train one
architecture (``make_op(..., fast_cpu_pool=True)``, as ``InferCell`` builds its ops) the stride-1 3×3
average pool on CPUs is a depthwise convolution with a ones kernel (``box_mean_3``: the same mean up to
float rounding, ~4x faster than ATen's CPU pooling; the ``AvgPool`` module stays, for GPUs, other strides
and AutoDL's module tree; search cells keep ATen's pooling, the fused kernels' reference), and
``ResNetBasicblock``'s
stride-2 shortcut pools with ``ceil_mode=True`` so odd sizes (FSD50K's 101 columns, Satellite's 46
→ 23 steps) give the conv branch's ⌈n/2⌉ instead of a shape error; for even sizes it is identical.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import InputError
from ..space.nb201 import OPS as NB201_OPS

__all__ = [
    "NB201_OPS",
    "OPS",
    "FactorizedReduce",
    "Identity",
    "Pooling",
    "ReLUConvBN",
    "ResNetBasicblock",
    "Zero",
    "check_dim",
    "conv_cls",
    "batchnorm_cls",
    "make_op",
]


def check_dim(dim: int) -> int:
    """Validate a spatial dimensionality (1 or 2) and return it."""
    if dim not in (1, 2):
        raise InputError(f"dim must be 1 (sequences) or 2 (images), got {dim!r}")
    return dim


def conv_cls(dim: int) -> type[nn.Module]:
    """nn.Conv2d or nn.Conv1d."""
    return nn.Conv2d if check_dim(dim) == 2 else nn.Conv1d


def batchnorm_cls(dim: int) -> type[nn.Module]:
    """nn.BatchNorm2d or nn.BatchNorm1d."""
    return nn.BatchNorm2d if check_dim(dim) == 2 else nn.BatchNorm1d


def conv_bn_stem(in_channels: int, C: int, dim: int) -> nn.Sequential:
    """The stem of the cell networks (NB201 and DARTS): 3x3 conv without bias, then BN."""
    return nn.Sequential(conv_cls(dim)(in_channels, C, kernel_size=3, padding=1, bias=False), batchnorm_cls(dim)(C))


def avgpool_cls(dim: int) -> type[nn.Module]:
    """nn.AvgPool2d or nn.AvgPool1d."""
    return nn.AvgPool2d if check_dim(dim) == 2 else nn.AvgPool1d


def _check_stride(stride: int) -> int:
    if stride not in (1, 2):
        raise InputError(f"cell operations take stride 1 or 2, got {stride!r}")
    return stride


class ReLUConvBN(nn.Module):
    """ReLU → Conv (bias exactly when BN is not affine) → BN, as AutoDL's ReLUConvBN."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, dilation: int = 1,
                 affine: bool = True, track_running_stats: bool = True, dim: int = 2) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            conv_cls(dim)(C_in, C_out, kernel_size, stride=stride, padding=padding, dilation=dilation,
                          bias=not affine),
            batchnorm_cls(dim)(C_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the operation."""
        return self.op(x)


class Identity(nn.Module):
    """skip_connect with unchanged shape: returns its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return x unchanged."""
        return x


class Zero(nn.Module):
    """The `none` op: x.mul(0.) (so NaN/inf propagate as in the original), or zeros of C_out channels."""

    is_zero = True

    def __init__(self, C_in: int, C_out: int, stride: int, dim: int = 2) -> None:
        super().__init__()
        self.C_in, self.C_out, self.stride, self.dim = C_in, C_out, _check_stride(stride), check_dim(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Zeros shaped like the op's output."""
        if self.C_in == self.C_out:
            if self.stride == 1:
                return x.mul(0.0)
            step = (slice(None), slice(None)) + (slice(None, None, self.stride),) * self.dim
            return x[step].mul(0.0)
        # AutoDL keeps the input's spatial size here even for stride 2 (never used with stride 2).
        shape = list(x.shape)
        shape[1] = self.C_out
        return x.new_zeros(shape)

    def extra_repr(self) -> str:
        return f"C_in={self.C_in}, C_out={self.C_out}, stride={self.stride}"


class FactorizedReduce(nn.Module):
    """skip_connect when shapes change: stride 2 = ReLU, two offset 1×1 stride-2 convs, concat, BN;
    stride 1 = 1×1 conv, BN (no ReLU, as the original)."""

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True,
                 dim: int = 2) -> None:
        super().__init__()
        self.stride, self.C_in, self.C_out, self.dim = _check_stride(stride), C_in, C_out, check_dim(dim)
        conv = conv_cls(dim)
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            halves = [C_out // 2, C_out - C_out // 2]
            self.convs = nn.ModuleList(conv(C_in, c, 1, stride=2, padding=0, bias=not affine) for c in halves)
            self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0) if dim == 2 else nn.ConstantPad1d((0, 1), 0)
        else:
            self.conv = conv(C_in, C_out, 1, stride=1, padding=0, bias=not affine)
        self.bn = batchnorm_cls(dim)(C_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reduce (stride 2) or project (stride 1) x, then BN."""
        if self.stride == 2:
            x = self.relu(x)
            y = self.pad(x)
            shifted = y[:, :, 1:, 1:] if self.dim == 2 else y[:, :, 1:]
            out = torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1)
        else:
            out = self.conv(x)
        return self.bn(out)

    def extra_repr(self) -> str:
        return f"C_in={self.C_in}, C_out={self.C_out}, stride={self.stride}"


def _box_constants(channels: int, spatial: tuple[int, ...], dtype: torch.dtype,
                   device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ones kernel, 1 / count of valid neighbours) of box_mean_3 for one input shape, cached."""
    key = (channels, spatial, dtype, device)
    found = _BOX_CACHE.get(key)
    if found is None:
        # normal tensors even under inference_mode, since a training step may reuse them later
        with torch.inference_mode(False), torch.no_grad():
            conv = torch.nn.functional.conv2d if len(spatial) == 2 else torch.nn.functional.conv1d
            ones = torch.ones((channels, 1) + (3,) * len(spatial), dtype=dtype, device=device)
            count = conv(torch.ones((1, 1) + spatial, dtype=dtype, device=device), ones[:1], padding=1)
            found = (ones, 1.0 / count)
        if len(_BOX_CACHE) >= 64:
            _BOX_CACHE.clear()
        _BOX_CACHE[key] = found
    return found


_BOX_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def box_mean_3(x: torch.Tensor) -> torch.Tensor:
    """AvgPool 3, stride 1, padding 1, count_include_pad=False of a (N, C, H, W) or (N, C, L) x, as a convolution.

    The same values as `nn.AvgPool2d/1d(3, 1, 1, count_include_pad=False)` up to rounding (the sum is taken in
    another order), and ~4x faster on CPUs, forward and backward (measured: 17 vs 67 ms for 32 archs at C=16
    on 15x15; a whole C=4 Darcy training step of a random cell 27.6 -> 18.5 ms): ATen's CPU average pooling
    is a scalar loop, oneDNN's depthwise convolution is vectorised.
    """
    channels = x.shape[1]
    ones, inverse_count = _box_constants(channels, tuple(x.shape[2:]), x.dtype, x.device)
    conv = torch.nn.functional.conv2d if x.dim() == 4 else torch.nn.functional.conv1d
    return conv(x, ones, padding=1, groups=channels) * inverse_count


class Pooling(nn.Module):
    """avg_pool_3x3: optional 1×1 ReLUConvBN when channels change, then AvgPool 3 (count_include_pad=False)."""

    def __init__(self, C_in: int, C_out: int, stride: int, affine: bool = True, track_running_stats: bool = True,
                 dim: int = 2) -> None:
        super().__init__()
        _check_stride(stride)
        self.preprocess = (None if C_in == C_out
                           else ReLUConvBN(C_in, C_out, 1, 1, 0, 1, affine, track_running_stats, dim))
        self.op = avgpool_cls(dim)(3, stride=stride, padding=1, count_include_pad=False)
        self.fast_cpu_pool = False  # make_op(..., fast_cpu_pool=True): box_mean_3 on CPUs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool x (after the 1x1 when channels change)."""
        if self.preprocess is not None:
            x = self.preprocess(x)
        if self.fast_cpu_pool and x.device.type == "cpu" and self.op.stride in (1, (1,), (1, 1)):
            return box_mean_3(x)
        return self.op(x)


class ResNetBasicblock(nn.Module):
    """The NB201 reduction block: ReLUConvBN 3 (stride s) → ReLUConvBN 3, plus a shortcut
    (stride 2: AvgPool 2 + 1×1 conv without BN; channel change: 1×1 ReLUConvBN; else identity)."""

    def __init__(self, inplanes: int, planes: int, stride: int, affine: bool = True,
                 track_running_stats: bool = True, dim: int = 2) -> None:
        super().__init__()
        _check_stride(stride)
        self.conv_a = ReLUConvBN(inplanes, planes, 3, stride, 1, 1, affine, track_running_stats, dim)
        self.conv_b = ReLUConvBN(planes, planes, 3, 1, 1, 1, affine, track_running_stats, dim)
        self.downsample: nn.Module | None
        if stride == 2:
            # ceil_mode=True: identical to the original for even sizes, and matches conv_a's ⌈n/2⌉ for odd ones.
            self.downsample = nn.Sequential(
                avgpool_cls(dim)(kernel_size=2, stride=2, padding=0, ceil_mode=True),
                conv_cls(dim)(inplanes, planes, kernel_size=1, stride=1, padding=0, bias=False),
            )
        elif inplanes != planes:
            self.downsample = ReLUConvBN(inplanes, planes, 1, 1, 0, 1, affine, track_running_stats, dim)
        else:
            self.downsample = None
        self.in_dim, self.out_dim, self.stride = inplanes, planes, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual block output: shortcut(x) + conv_b(conv_a(x))."""
        out = self.conv_b(self.conv_a(x))
        residual = x if self.downsample is None else self.downsample(x)
        return residual + out

    def extra_repr(self) -> str:
        return f"inC={self.in_dim}, outC={self.out_dim}, stride={self.stride}"


OpFactory = Callable[..., nn.Module]

OPS: dict[str, OpFactory] = {
    "none": lambda C_in, C_out, stride, affine=True, track_running_stats=True, dim=2: Zero(C_in, C_out, stride, dim),
    "skip_connect": lambda C_in, C_out, stride, affine=True, track_running_stats=True, dim=2: (
        Identity() if stride == 1 and C_in == C_out
        else FactorizedReduce(C_in, C_out, stride, affine, track_running_stats, dim)),
    "nor_conv_1x1": lambda C_in, C_out, stride, affine=True, track_running_stats=True, dim=2: ReLUConvBN(
        C_in, C_out, 1, stride, 0, 1, affine, track_running_stats, dim),
    "nor_conv_3x3": lambda C_in, C_out, stride, affine=True, track_running_stats=True, dim=2: ReLUConvBN(
        C_in, C_out, 3, stride, 1, 1, affine, track_running_stats, dim),
    "avg_pool_3x3": lambda C_in, C_out, stride, affine=True, track_running_stats=True, dim=2: Pooling(
        C_in, C_out, stride, affine, track_running_stats, dim),
}
assert tuple(OPS) == NB201_OPS, "OPS must list the NB201 operations in nb360.space.nb201 order"


def make_op(name: str, C_in: int, C_out: int, stride: int = 1, affine: bool = True,
            track_running_stats: bool = True, dim: int = 2, *, fast_cpu_pool: bool = False) -> nn.Module:
    """Build one NB201 cell operation by name (see module docstring for the definitions).

    `fast_cpu_pool`: avg_pool_3x3 runs as `box_mean_3` on CPUs (same values up to rounding, ~4x faster).
    """
    if name not in OPS:
        raise InputError(f"unknown cell operation {name!r}: choose one of {', '.join(NB201_OPS)}")
    if C_in < 1 or C_out < 1:
        raise InputError(f"channel counts must be positive, got C_in={C_in}, C_out={C_out}")
    _check_stride(stride)
    op = OPS[name](C_in, C_out, stride, affine, track_running_stats, check_dim(dim))
    if isinstance(op, Pooling):
        op.fast_cpu_pool = fast_cpu_pool
    return op
