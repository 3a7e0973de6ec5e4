"""The NAS-Bench-201 cell network (`TinyNetwork`) for 2D point, 2D dense and 1D point tasks.

Layer for layer the network NAS-Bench-201 / NATS-Bench and NAS-Bench-360 trained (AutoDL
`xautodl/models/cell_infers/{tiny_network,cells}.py`; NB360 `precompute/{ninapro,darcyflow}`):

- stem: Conv 3×3 (in_channels → C, no bias) + BN;
- three stages of N cells at C, 2C, 4C; between stages a reduction slot;
- point tasks: the reduction slot is `ResNetBasicblock(stride 2)`; then BN + ReLU (`lastact`, the
  layer NASLib's re-implementation lacked), global average pooling, Linear;
- dense tasks (NB360's Darcy network): no downsampling, the reduction slots are cells with stride 1
  and channel growth (C→2C, 2C→4C), BN + ReLU, then a per-pixel Linear head; `forward_window`
  tiles large maps (PSICOV);
- 1D tasks: the same network with Conv1d / BatchNorm1d / AvgPool1d.

Module names match AutoDL's, so NB201 checkpoints load with `load_state_dict`. Interface
differences: `forward` returns only the logits (AutoDL returned `(features, logits)`; see
`forward_features`), and dense networks take and return channels-first tensors, (N, C, H, W) →
(N, num_outputs, H, W), where NB360's Darcy network permuted NHWC inside.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from ..ops.cells import ResNetBasicblock, batchnorm_cls, conv_bn_stem, make_op
from ..space import nb201
from .dense import WindowedInference, topology_layout


def stage_plan(C: int, N: int, dense: bool) -> list[tuple[int, bool]]:
    """(channels, is_reduction_block) for each of the 3N+2 layers after the stem.

    Dense networks have no reduction blocks: those two slots are cells with channel growth.
    """
    if C < 1 or N < 0:
        raise InputError(f"the NB201 network needs C >= 1 and N >= 0, got C={C}, N={N}")
    channels = [C] * N + [2 * C] + [2 * C] * N + [4 * C] + [4 * C] * N
    reductions = [False] * N + [not dense] + [False] * N + [not dense] + [False] * N
    return list(zip(channels, reductions))


class InferCell(nn.Module):
    """One NB201 cell with fixed operations: node j = sum over i < j of op_(i→j)(node i); output node 3.

    `layers[e]` is the operation on edge `nb201.EDGES[e]` (arch-string order); edges out of node 0
    map C_in → C_out with the cell's stride, the others C_out → C_out.
    """

    def __init__(self, arch: nb201.Arch, C_in: int, C_out: int, stride: int = 1, affine: bool = True,
                 track_running_stats: bool = True, dim: int = 2) -> None:
        super().__init__()
        self.op_names = nb201.ops(arch)
        self.layers = nn.ModuleList(
            # fast_cpu_pool: the 3x3 average pool as a depthwise convolution on CPUs (1.5x faster training steps)
            make_op(op, C_in, C_out, stride, affine, track_running_stats, dim, fast_cpu_pool=True) if source == 0
            else make_op(op, C_out, C_out, 1, affine, track_running_stats, dim, fast_cpu_pool=True)
            for op, (source, _target) in zip(self.op_names, nb201.EDGES)
        )
        self.in_dim, self.out_dim = C_in, C_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the cell: node j sums its incoming edges; returns node 3."""
        nodes = [x]
        for target in range(1, nb201.NUM_NODES):
            nodes.append(sum(self.layers[e](nodes[source])
                             for e, (source, t) in enumerate(nb201.EDGES) if t == target))
        return nodes[-1]

    def extra_repr(self) -> str:
        return f"inC={self.in_dim}, outC={self.out_dim}, arch={nb201.to_str(self.op_names)}"


class TinyNetwork(WindowedInference, nn.Module):
    """The NB201 network for one arch (index, arch string or op tuple) and one task shape."""

    def __init__(self, arch: nb201.Arch, num_outputs: int, in_channels: int = 3, C: int = 16, N: int = 5,
                 topology: str = "point2d", affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        if num_outputs < 1 or in_channels < 1:
            raise InputError(f"num_outputs and in_channels must be positive, got {num_outputs}, {in_channels}")
        dim, dense = topology_layout(topology)
        self.arch = nb201.to_str(arch)
        self.topology, self.dim, self.dense = topology, dim, dense
        self.C, self.N, self.in_channels, self.num_outputs = C, N, in_channels, num_outputs
        self.stem = conv_bn_stem(in_channels, C, dim)
        self.cells = nn.ModuleList()
        C_prev = C
        for C_curr, reduction in stage_plan(C, N, dense):
            # Reduction blocks are always affine (as in AutoDL); `affine` applies to the cells only.
            cell = (ResNetBasicblock(C_prev, C_curr, 2, True, True, dim) if reduction
                    else InferCell(self.arch, C_prev, C_curr, 1, affine, track_running_stats, dim))
            self.cells.append(cell)
            C_prev = C_curr
        self.lastact = nn.Sequential(batchnorm_cls(dim)(C_prev), nn.ReLU(inplace=False))
        self.global_pooling = None if dense else (nn.AdaptiveAvgPool2d(1) if dim == 2 else nn.AdaptiveAvgPool1d(1))
        self.classifier = nn.Linear(C_prev, num_outputs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features after the final BN + ReLU, before pooling: (N, 4C, *spatial)."""
        if x.dim() != self.dim + 2 or x.shape[1] != self.in_channels:
            want = "(N, C, H, W)" if self.dim == 2 else "(N, C, L)"
            raise InputError(f"{type(self).__name__} expects a {want} batch with C={self.in_channels}, "
                             f"got shape {tuple(x.shape)}")
        feature = self.stem(x)
        for cell in self.cells:
            feature = cell(feature)
        return self.lastact(feature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits: (N, num_outputs) for point tasks, (N, num_outputs, H, W) for dense tasks."""
        return classify(self, self.forward_features(x))

    def extra_repr(self) -> str:
        return f"C={self.C}, N={self.N}, topology={self.topology}, arch={self.arch}"


def classify(net: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Shared head: global pool + Linear (point), or a per-position Linear (dense)."""
    if net.global_pooling is not None:
        return net.classifier(net.global_pooling(features).flatten(1))
    # Per-pixel Linear, as NB360's dense network (`classifier(out.permute(0, 2, 3, 1))`), channels-first out.
    return net.classifier(features.movedim(1, -1)).movedim(-1, 1)
