"""Wide ResNet backbones of NAS-Bench-360: WRN-16-4 for 2D point tasks and the dense no-downsampling WRN.

Copied layer for layer from NB360 `backbone/backbone_pt.py` (`Backbone_Pt`, `Backbone_Audio`) and
`backbone/backbone_grid_wrn.py` (`Backbone`), themselves from xternalz/WideResNet-pytorch:
pre-activation basic blocks, channels [16, 16k, 32k, 64k], Kaiming-normal (fan_out) conv init,
BN weight 1 / bias 0, Linear bias 0. Module names match the originals.

Deliberate differences, documented:
- Pooling (point WRN). The original picks a pooling per final map size: (2, 8) → avg_pool(2, 8),
  (4, 13) → avg_pool(4, 13), height 6 → adaptive, anything else `F.avg_pool2d(out, 8)`. On
  Spherical CIFAR-100 (60×60 input, 15×15 final map) that last rule pools only the top-left 8×8
  window and throws away the rest of the map. `pooling="global"` (the default) averages the whole
  final map for every input size, which equals the original wherever the original covered the
  whole map (CIFAR-100 8×8, NinaPro 4×13, FSD50K's `Backbone_Audio` adaptive pooling);
  `pooling="original"` reproduces the original rules exactly, Spherical quirk included (for
  FSD50K `build` maps it to global pooling, since NB360 trained FSD50K with `Backbone_Audio`).
- Dense WRN: the original also defines an `out_conv` (3×3 conv to num_classes) that forward never
  uses; it is left out, so the parameter count is lower by 9·64k·out + out (2,305 for WRN-16-4,
  one output) and nothing else changes. Inputs are channels-first: the original permuted
  channels-last input inside forward when `x.size(3) == 3` (Darcy), nb360's loaders hand over
  (N, C, H, W). Output is (N, num_outputs, H, W) (the original returned (N, H, W, num_outputs)).
- ReLUs are not in-place (same values).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .dense import WindowedInference

Pooling = Literal["global", "original"]


class BasicBlock(nn.Module):
    """Pre-activation WRN block: BN-ReLU-conv3(stride)-BN-ReLU-[dropout]-conv3, plus shortcut
    (identity, or a 1×1 conv on the pre-activated input when channels change)."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.droprate = drop_rate
        self.equalInOut = in_planes == out_planes
        self.convShortcut = (None if self.equalInOut
                             else nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activation residual block output."""
        if self.equalInOut:
            out = self.relu1(self.bn1(x))
            out = self.relu2(self.bn2(self.conv1(out)))
        else:
            x = self.relu1(self.bn1(x))  # the shortcut conv sees the pre-activated input, as the original
            out = self.relu2(self.bn2(self.conv1(x)))
        if self.droprate > 0:
            out = F.dropout(out, p=self.droprate, training=self.training)
        out = self.conv2(out)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)


class NetworkBlock(nn.Module):
    """A stage of `nb_layers` BasicBlocks; the first one carries the stride and channel change."""

    def __init__(self, nb_layers: int, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.layer = nn.Sequential(*(
            BasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, drop_rate)
            for i in range(nb_layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the blocks in order."""
        return self.layer(x)


def _blocks_per_stage(depth: int) -> int:
    if depth < 10 or (depth - 4) % 6 != 0:
        raise InputError(f"WRN depth must be 6n+4 with n >= 1 (10, 16, 22, 28, ...), got {depth}")
    return (depth - 4) // 6


def _check_common(num_outputs: int, in_channels: int, widen_factor: int, drop_rate: float) -> None:
    if num_outputs < 1 or in_channels < 1 or widen_factor < 1:
        raise InputError(f"num_outputs, in_channels and widen_factor must be positive, got "
                         f"{num_outputs}, {in_channels}, {widen_factor}")
    if not 0.0 <= drop_rate < 1.0:
        raise InputError(f"drop_rate must be in [0, 1), got {drop_rate}")


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1)
            m.bias.data.zero_()
        elif isinstance(m, nn.Linear):
            m.bias.data.zero_()


class WideResNet(nn.Module):
    """WRN-depth-k for 2D point tasks (NB360 `Backbone_Pt` / `Backbone_Audio`)."""

    def __init__(self, num_outputs: int, in_channels: int = 3, depth: int = 16, widen_factor: int = 4,
                 drop_rate: float = 0.0, pooling: Pooling = "global") -> None:
        super().__init__()
        _check_common(num_outputs, in_channels, widen_factor, drop_rate)
        if pooling not in ("global", "original"):
            raise InputError(f"pooling must be 'global' (whole final map) or 'original' (NB360's rules), "
                             f"got {pooling!r}")
        n = _blocks_per_stage(depth)
        ch = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.depth, self.widen_factor, self.pooling = depth, widen_factor, pooling
        self.in_channels, self.num_outputs = in_channels, num_outputs
        self.conv1 = nn.Conv2d(in_channels, ch[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, ch[0], ch[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, ch[1], ch[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, ch[2], ch[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.relu = nn.ReLU(inplace=False)
        self.fc = nn.Linear(ch[3], num_outputs)
        self.nChannels = ch[3]
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final BN + ReLU feature map, before pooling."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InputError(f"WideResNet expects a (N, {self.in_channels}, H, W) batch, got shape {tuple(x.shape)}")
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.relu(self.bn1(out))

    def pool(self, out: torch.Tensor) -> torch.Tensor:
        """Pool the final map to (N, channels)."""
        if self.pooling == "global":
            return out.mean(dim=(2, 3))
        height, width = out.shape[2:]
        if height == 2 and width == 8:
            out = F.avg_pool2d(out, (2, 8))
        elif width == 13 and height == 4:
            out = F.avg_pool2d(out, (4, 13))
        elif height == 6:
            out = F.adaptive_avg_pool2d(out, (1, 1))
        else:
            out = F.avg_pool2d(out, 8)  # 15×15 (Spherical) → only the top-left 8×8 window
            if out.shape[2:] != (1, 1):
                raise InputError(f"NB360's point-WRN pooling leaves a {height}×{width} final map at "
                                 f"{out.shape[2]}×{out.shape[3]}, which its Linear cannot take (the original fails "
                                 "here too); use pooling='global' (NB360 trained FSD50K with Backbone_Audio, i.e. "
                                 "global pooling)")
        return out.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_outputs)."""
        return self.fc(self.pool(self.forward_features(x)))

    def extra_repr(self) -> str:
        return f"WRN-{self.depth}-{self.widen_factor}, pooling={self.pooling}"


class DenseWideResNet(WindowedInference, nn.Module):
    """WRN-depth-k with no downsampling and a per-pixel Linear head, for dense tasks (NB360 `Backbone`)."""

    def __init__(self, num_outputs: int = 1, in_channels: int = 3, depth: int = 16, widen_factor: int = 4,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        _check_common(num_outputs, in_channels, widen_factor, drop_rate)
        n = _blocks_per_stage(depth)
        ch = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.depth, self.widen_factor = depth, widen_factor
        self.in_channels, self.num_outputs = in_channels, num_outputs
        # BN + ReLU on the raw input before the first conv, as the original's `in_layer`.
        self.in_layer = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=False),
                                      nn.Conv2d(in_channels, ch[0], kernel_size=3, stride=1, padding=1, bias=False))
        self.block1 = NetworkBlock(n, ch[0], ch[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, ch[1], ch[2], 1, drop_rate)
        self.block3 = NetworkBlock(n, ch[2], ch[3], 1, drop_rate)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.relu = nn.ReLU(inplace=False)
        self.fc = nn.Linear(ch[3], num_outputs)
        self.nChannels = ch[3]
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final BN + ReLU feature map (N, 64k, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InputError(f"DenseWideResNet expects a (N, {self.in_channels}, H, W) batch (channels first), "
                             f"got shape {tuple(x.shape)}")
        out = self.block3(self.block2(self.block1(self.in_layer(x))))
        return self.relu(self.bn1(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel predictions (N, num_outputs, H, W)."""
        return self.fc(self.forward_features(x).movedim(1, -1)).movedim(-1, 1)

    def extra_repr(self) -> str:
        return f"dense WRN-{self.depth}-{self.widen_factor}"
