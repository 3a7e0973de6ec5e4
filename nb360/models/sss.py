"""The network of NATS-Bench's size search space ('sss'): a fixed cell, five searched channel counts.

Layer for layer AutoDL's `DynamicShapeTinyNet` (xautodl/models/shape_infers/InferTinyCellNet.py),
which NATS-Bench trained for every size-space arch ('infer.shape.tiny' in its records):

- stem: Conv 3×3 (in_channels → c0, no bias) + BN;
- five layers with channels c0..c4 (the arch '16:40:56:24:40'): cell, reduction, cell, reduction,
  cell, where each cell is the NB201 cell of nb360.space.sss.GENOTYPE (InferCell; its edges out of
  node 0 map the previous layer's channels to this layer's) and each reduction a
  ResNetBasicblock(stride 2);
- BN + ReLU, global average pooling, Linear.

Module names match AutoDL's, so NATS-Bench size-space checkpoints load with `load_state_dict`; as
with TinyNetwork, `forward` returns only the logits. Params and FLOPs (nb360.models.counting)
equal the `params`/`flop` NATS-Bench records (tests/test_models_sss.py checks the fixtures).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from ..ops.cells import ResNetBasicblock, batchnorm_cls, conv_bn_stem
from ..space import sss
from .nb201 import InferCell

# Which of the five layers are reduction blocks (AutoDL: [False]*N + [True] + [False]*N + [True] + [False]*N, N=1).
REDUCTIONS = (False, True, False, True, False)


class SizeNetwork(nn.Module):
    """The NATS-Bench size-space network for an arch (index, '16:40:56:24:40' or five channel counts)."""

    def __init__(self, arch: sss.Arch, num_outputs: int, in_channels: int = 3,
                 genotype: str = sss.GENOTYPE) -> None:
        super().__init__()
        if num_outputs < 1 or in_channels < 1:
            raise InputError(f"num_outputs and in_channels must be positive, got {num_outputs}, {in_channels}")
        self.channels = sss.channels(arch)
        self.arch = sss.to_str(self.channels)
        self.genotype = genotype
        self.in_channels, self.num_outputs = in_channels, num_outputs
        self.stem = conv_bn_stem(in_channels, self.channels[0], 2)
        self.cells = nn.ModuleList()
        c_prev = self.channels[0]
        for c_curr, reduction in zip(self.channels, REDUCTIONS):
            cell = ResNetBasicblock(c_prev, c_curr, 2, True) if reduction else InferCell(genotype, c_prev, c_curr, 1)
            self.cells.append(cell)
            c_prev = cell.out_dim
        self.lastact = nn.Sequential(batchnorm_cls(2)(c_prev), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_outputs) of a (N, in_channels, H, W) batch."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InputError(f"SizeNetwork expects a (N, C, H, W) batch with C={self.in_channels}, "
                             f"got shape {tuple(x.shape)}")
        feature = self.stem(x)
        for cell in self.cells:
            feature = cell(feature)
        out = self.global_pooling(self.lastact(feature)).flatten(1)
        return self.classifier(out)

    def extra_repr(self) -> str:
        return f"channels={self.arch}, genotype={self.genotype}"
