"""The 1D ResNet baseline of NAS-Bench-360 (ECG, Satellite, DeepSEA).

NB360 `backbone_1d/backbone_1d.py::ResNet1D(in_channels, 64, n_classes)`, from
okrasolar/pytorch-timeseries: the "ResNet baseline" for time series of Wang et al. (2017) as
arXiv 1909.04939 uses it:
three residual blocks of three conv blocks each (Conv1d with TensorFlow-style "same" padding, kernels
8/5/3, bias; BatchNorm1d; ReLU), channels 64/128/128, global mean over time, Linear.

The original's missing third skip: its blocks add a residual (1×1 conv + BN) only when the channel
count changes, so the third block (128 → 128) has no skip at all. The ResNet baseline it reproduces
(hfawaz/dl-4-tsc `classifiers/resnet.py`, "no need to expand channels because they are equal")
gives that block a BatchNorm shortcut. `third_skip=True` (the default) adds that BN shortcut;
`third_skip=False` is the faithful NB360 network, which the published 1D baseline numbers used.
Either way the rest of the block stays as NB360 has it (ReLU after each of the three convs, no ReLU
after the add; the Keras original differs there too).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError


class Conv1dSamePadding(nn.Conv1d):
    """Conv1d with TensorFlow "same" padding: total padding (L_out - 1)·stride - L + dilation·(k - 1) + 1,
    the odd extra element on the right (kernel 8 at stride 1: 3 left, 4 right)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve with same padding."""
        kernel, dilation, stride = self.weight.size(2), self.dilation[0], self.stride[0]
        length = x.size(2)
        padding = (length - 1) * stride - length + dilation * (kernel - 1) + 1
        if padding % 2 != 0:
            x = F.pad(x, [0, 1])
        return F.conv1d(x, self.weight, self.bias, self.stride, padding // 2, self.dilation, self.groups)


class ConvBlock(nn.Module):
    """Same-padded Conv1d → BatchNorm1d → ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            Conv1dSamePadding(in_channels, out_channels, kernel_size=kernel_size, stride=stride),
            nn.BatchNorm1d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Conv, BN, ReLU."""
        return self.layers(x)


class ResNetBlock(nn.Module):
    """Three ConvBlocks (kernels 8, 5, 3) plus a shortcut: 1×1 conv + BN when channels change; when they
    do not, BN (third_skip=True) or nothing at all (third_skip=False, the NB360 original)."""

    def __init__(self, in_channels: int, out_channels: int, third_skip: bool = True) -> None:
        super().__init__()
        channels = [in_channels, out_channels, out_channels, out_channels]
        self.layers = nn.Sequential(*(ConvBlock(channels[i], channels[i + 1], k) for i, k in enumerate((8, 5, 3))))
        self.match_channels = in_channels != out_channels
        self.residual: nn.Module | None = None
        if self.match_channels:
            self.residual = nn.Sequential(Conv1dSamePadding(in_channels, out_channels, kernel_size=1, stride=1),
                                          nn.BatchNorm1d(out_channels))
        elif third_skip:
            self.residual = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Block output: convs plus the shortcut (if any)."""
        if self.residual is None:
            return self.layers(x)
        return self.layers(x) + self.residual(x)


class ResNet1D(nn.Module):
    """ResNet baseline for 1D point tasks: blocks of mid, 2·mid, 2·mid channels, mean over time, Linear."""

    def __init__(self, num_outputs: int, in_channels: int = 1, mid_channels: int = 64, third_skip: bool = True) -> None:
        super().__init__()
        if num_outputs < 1 or in_channels < 1 or mid_channels < 1:
            raise InputError(f"num_outputs, in_channels and mid_channels must be positive, got "
                             f"{num_outputs}, {in_channels}, {mid_channels}")
        self.in_channels, self.num_outputs, self.third_skip = in_channels, num_outputs, third_skip
        self.layers = nn.Sequential(
            ResNetBlock(in_channels, mid_channels, third_skip),
            ResNetBlock(mid_channels, mid_channels * 2, third_skip),
            ResNetBlock(mid_channels * 2, mid_channels * 2, third_skip),
        )
        self.final = nn.Linear(mid_channels * 2, num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output (N, 2·mid, L)."""
        if x.dim() != 3 or x.shape[1] != self.in_channels:
            raise InputError(f"ResNet1D expects a (N, {self.in_channels}, L) batch, got shape {tuple(x.shape)}")
        return self.layers(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_outputs)."""
        return self.final(self.forward_features(x).mean(dim=-1))

    def extra_repr(self) -> str:
        return f"third_skip={self.third_skip}"
