"""K NB201 cell networks computed as one network: stacked weights, grouped convolutions, per-arch channels.

Why: at the shapes of table builds (C=4 on 15×15, or NB201's C=16 on 32×32) one network's step is a few
hundred small kernels. Stacking K networks of the same shape (any cells) along the channel axis turns each
of those kernels into one kernel over K networks (on a GPU, where small kernels are launch-bound, that is
the lever; on CPUs the kernels cost about the same per element stacked or not, so the gain is small: 1.1x
per cell over the one-at-a-time networks, measured in benchmarks/RESULTS.md): the activations are
(B, K·C, *spatial), arch k owning channels [k·C, (k+1)·C); convolutions are grouped (one group per arch),
BatchNorm over K·C channels is exactly K BatchNorms, and the heads are batched matmuls. The 3×3 average
pool is a depthwise convolution (`box_mean_3`; the single networks use it on CPUs), and 2D stacks on CPUs
run channels-last, where oneDNN's grouped convolutions are 2-3x faster than channels-first (BatchNorm there
through `nb360.ops.batch_norm_rows`, whose two-pass variance keeps the channels-first accuracy that ATen's
channels-last BatchNorm loses; measured ~8 % faster per cell than a channels-first stack).

Each arch keeps its own parameters, BN statistics and (with a stacked optimiser, which is elementwise)
optimiser state: nothing mixes between archs, so arch k's outputs and gradients are those of its own
network up to float rounding (grouped vs single convolutions sum in other orders). On a cell edge the archs
are grouped by their operation there: each group's input channels are gathered (`index_select`), the
operation runs over the group, and the groups' results are put back in arch order (one permutation per
edge; both are `index_select`s over the arch axis of a (rows, K, ·) view, see `_ArchRows`); nodes add
their edges in the order of `InferCell`, so every node is summed as the reference sums it.

`StackedNB201(nets)` copies the weights of K built `TinyNetwork`s (so each starts from its own seeded
initialisation) and `unstack()` writes the trained weights and statistics back into them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..ops.batch_norm_rows import batch_norm_channels_last
from ..ops.cells import FactorizedReduce, Identity, Pooling, ReLUConvBN, ResNetBasicblock, Zero, box_mean_3
from ..space import nb201
from .nb201 import InferCell, TinyNetwork


def _cat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach() for t in tensors]).clone()


class _Conv(nn.Module):
    """K convolutions as one: grouped (one group per arch), or over one shared input (`shared_input`)."""

    def __init__(self, convs: list[nn.Module], shared_input: bool = False) -> None:
        super().__init__()
        first = convs[0]
        if first.dilation not in ((1,), (1, 1)) or first.groups != 1 or first.padding_mode != "zeros":
            raise InputError("stacking supports plain convolutions only (no dilation, groups or padding modes)")
        self.sources = convs  # a plain list: the per-arch modules are not submodules of the stack
        self.weight = nn.Parameter(_cat([c.weight for c in convs]))
        self.bias = nn.Parameter(_cat([c.bias for c in convs])) if first.bias is not None else None
        self.stride, self.padding = first.stride, first.padding
        self.groups = 1 if shared_input else len(convs)
        self.fn = F.conv2d if first.weight.dim() == 4 else F.conv1d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)

    @torch.no_grad()
    def unstack(self) -> None:
        for conv, w in zip(self.sources, self.weight.chunk(len(self.sources))):
            conv.weight.copy_(w)
        if self.bias is not None:
            for conv, b in zip(self.sources, self.bias.chunk(len(self.sources))):
                conv.bias.copy_(b)


class _BatchNorm(nn.Module):
    """K BatchNorms of C channels as one BatchNorm of K·C channels (statistics are per channel either way)."""

    def __init__(self, bns: list[nn.Module]) -> None:
        super().__init__()
        first = bns[0]
        self.sources = bns
        self.bn = type(first)(first.num_features * len(bns), eps=first.eps, momentum=first.momentum,
                              affine=first.affine, track_running_stats=first.track_running_stats)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                if getattr(first, name) is not None:
                    getattr(self.bn, name).copy_(_cat([getattr(b, name) for b in bns]))
            if first.num_batches_tracked is not None:
                self.bn.num_batches_tracked.copy_(first.num_batches_tracked)
        self.bn.to(first.weight.device if first.weight is not None else first.running_mean.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last training batches through the two-pass kernel (ATen's one-pass variance rounds ~5x worse)
        return batch_norm_channels_last(x, self.bn)

    @torch.no_grad()
    def unstack(self) -> None:
        k = len(self.sources)
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(self.bn, name) is not None:
                for bn, part in zip(self.sources, getattr(self.bn, name).chunk(k)):
                    getattr(bn, name).copy_(part)
        if self.bn.num_batches_tracked is not None:
            for bn in self.sources:
                bn.num_batches_tracked.copy_(self.bn.num_batches_tracked)


class _BoxMean(nn.Module):
    """`box_mean_3` (the stride-1 3×3 average pool as a depthwise convolution) as a module, on any device."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return box_mean_3(x)


def _relu_conv_bn(ops: list[ReLUConvBN]) -> nn.Module:
    return nn.Sequential(nn.ReLU(), _Conv([o.op[1] for o in ops]), _BatchNorm([o.op[2] for o in ops]))


def _stack_op(ops: list[nn.Module]) -> nn.Module | None:
    """The stacked form of one operation taken by a group of archs (None: the `none` op)."""
    first = ops[0]
    if isinstance(first, Zero):
        return None
    if isinstance(first, Identity):
        return nn.Identity()
    if isinstance(first, ReLUConvBN):
        return _relu_conv_bn(ops)
    if isinstance(first, Pooling):
        pool = first.op
        if pool.stride not in (1, (1,), (1, 1)):
            raise InputError("stacking supports stride-1 pooling in cells only")
        pooled = _BoxMean()
        if first.preprocess is None:
            return pooled
        return nn.Sequential(_relu_conv_bn([o.preprocess for o in ops]), pooled)
    if isinstance(first, FactorizedReduce) and first.stride == 1:
        return nn.Sequential(_Conv([o.conv for o in ops]), _BatchNorm([o.bn for o in ops]))
    raise InputError(f"stacking does not support the operation {type(first).__name__} here")


class _ArchRows:
    """Views of stacked activations (B, K·C, *spatial) as (P, K, Q) rows, the arch axis in the middle, and back.

    Channels-first: (B, K, C·spatial). Channels-last (2D): (B·H·W, K, C), the layout's own rows. Both are views
    of contiguous tensors, so gathering and scattering archs is an `index_select` over dim 1 of a contiguous
    3D tensor, a copy of whole blocks (measured: ~4x cheaper than `index_select` over the channel dim of a
    channels-last 4D tensor).
    """

    def __init__(self, like: torch.Tensor) -> None:
        self.batch, self.spatial = like.shape[0], tuple(like.shape[2:])
        self.channels_last = (like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last)
                              and not like.is_contiguous())

    def rows(self, t: torch.Tensor, channels: int) -> torch.Tensor:
        """(P, archs, Q) rows of t (B, archs·channels, *spatial)."""
        if self.channels_last:
            return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1] // channels, channels)
        return t.reshape(self.batch, t.shape[1] // channels, -1)

    def tensor(self, r: torch.Tensor) -> torch.Tensor:
        """The (B, archs·channels, *spatial) tensor of rows r (P, archs, Q), in the layout's memory format."""
        if self.channels_last:
            return r.reshape(self.batch, *self.spatial, -1).permute(0, 3, 1, 2)
        return r.reshape(self.batch, -1, *self.spatial)


class _Gather(torch.autograd.Function):
    """The input of each op group on an edge: `src[:, members]` per group, with a backward of two copies.

    Autograd's own backward of k `index_select`s is k zero-filled full-size tensors, k scatters and k - 1
    sums; the groups of an edge take disjoint archs, so the gradient is one concatenation (zeros for the
    `none` archs) put back in arch order by one permutation: the same values, in two passes over memory.
    """

    @staticmethod
    def forward(ctx, src, layout, channels, inverse, none_count, *members):  # type: ignore[override]
        ctx.save_for_backward(inverse)
        ctx.layout, ctx.channels, ctx.none_count, ctx.sizes = layout, channels, none_count, [len(m) for m in members]
        rows = layout.rows(src, channels)
        return tuple(layout.tensor(rows.index_select(1, m)) for m in members)

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        (inverse,) = ctx.saved_tensors
        layout, channels = ctx.layout, ctx.channels
        ref = layout.rows(next(g for g in grads if g is not None), channels)
        parts = [layout.rows(g, channels) if g is not None else ref.new_zeros((ref.shape[0], n, ref.shape[2]))
                 for g, n in zip(grads, ctx.sizes)]
        if ctx.none_count:
            parts.append(ref.new_zeros((ref.shape[0], ctx.none_count, ref.shape[2])))
        grad = layout.tensor(torch.cat(parts, 1).index_select(1, inverse))
        return (grad, None, None, None, None, *([None] * len(ctx.sizes)))


class _Scatter(torch.autograd.Function):
    """The edge output in arch order from the groups' outputs (zeros for `none`); backward: one gather per group."""

    @staticmethod
    def forward(ctx, layout, channels, inverse, none_count, members, *parts):  # type: ignore[override]
        ctx.layout, ctx.channels, ctx.members = layout, channels, members
        rows = [layout.rows(p, channels) for p in parts]
        if none_count:
            rows.append(rows[0].new_zeros((rows[0].shape[0], none_count, rows[0].shape[2])))
        return layout.tensor(torch.cat(rows, 1).index_select(1, inverse))

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        layout, channels = ctx.layout, ctx.channels
        rows = layout.rows(grad, channels)
        return (None, None, None, None, None, *(layout.tensor(rows.index_select(1, m)) for m in ctx.members))


# The default layout of 2D stacks on CPUs (benchmarks/builder_bench.py --layouts compares both).
CHANNELS_LAST = True

_FROM_INPUT = frozenset(e for e, (source, _target) in enumerate(nb201.EDGES) if source == 0)


class _Cell(nn.Module):
    """K InferCells (any ops): per edge, the archs grouped by operation, each group computed once.

    An edge whose archs all take one operation runs it on the whole stack. Otherwise each group's input
    channels are gathered, its operation runs, and the groups' outputs (zeros for `none`) are concatenated
    and put back in arch order by one permutation; the node adds its edges in `InferCell`'s order.
    """

    def __init__(self, cells: list[InferCell]) -> None:
        super().__init__()
        self.K, self.C_in, self.C_out = len(cells), cells[0].in_dim, cells[0].out_dim
        self.ops = nn.ModuleList()
        # per edge: None (every arch `none`), ("all", op index), or ("groups", [(op index, archs buffer)], order buffer)
        self.plans: list[tuple | None] = []
        device = next(iter(cells[0].parameters()), torch.empty(0)).device
        for e in range(len(nb201.EDGES)):
            by_op: dict[str, list[int]] = {}
            for k, cell in enumerate(cells):
                by_op.setdefault(cell.op_names[e], []).append(k)
            if set(by_op) == {"none"}:
                self.plans.append(None)
                continue
            if len(by_op) == 1:
                (name, members), = by_op.items()
                self.ops.append(_stack_op([cells[k].layers[e] for k in members]))
                self.plans.append(("all", len(self.ops) - 1))
                continue
            groups, order = [], []
            for name in nb201.OPS:  # a fixed order; groups touch disjoint archs, so it changes no sum
                members = by_op.get(name)
                if not members or name == "none":
                    continue
                self.ops.append(_stack_op([cells[k].layers[e] for k in members]))
                groups.append((len(self.ops) - 1, self._index(f"members_{e}_{name}", members, device), len(members)))
                order += members
            zeros = len(by_op.get("none", ()))
            order += by_op.get("none", [])
            inverse = [order.index(k) for k in range(self.K)]
            self.plans.append(("groups", groups, zeros, self._index(f"inverse_{e}", inverse, device)))

    def _index(self, name: str, values: list[int], device: torch.device) -> str:
        self.register_buffer(name, torch.tensor(values, dtype=torch.long, device=device), persistent=False)
        return name

    def _edge(self, e: int, src: torch.Tensor, layout: _ArchRows) -> torch.Tensor | None:
        """The edge's output for every arch, (B, K·C_out, *spatial); None when every arch has `none` there."""
        plan = self.plans[e]
        if plan is None:
            return None
        if plan[0] == "all":
            return self.ops[plan[1]](src)
        _, groups, zeros, inverse = plan
        members = [getattr(self, name) for _, name, _ in groups]
        channels = self.C_in if e in _FROM_INPUT else self.C_out
        inputs = _Gather.apply(src, layout, channels, getattr(self, inverse), zeros, *members)
        parts = [self.ops[op_index](part) for (op_index, _, _), part in zip(groups, inputs)]
        return _Scatter.apply(layout, self.C_out, getattr(self, inverse), zeros, members, *parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layout = _ArchRows(x)
        nodes = [x]
        for target in range(1, nb201.NUM_NODES):
            acc: torch.Tensor | None = None
            for e, (source, t) in enumerate(nb201.EDGES):
                if t == target:
                    y = self._edge(e, nodes[source], layout)
                    if y is not None:
                        acc = y if acc is None else acc + y
            if acc is None:
                acc = x.new_zeros(x.shape[0], self.K * self.C_out, *x.shape[2:])
                if layout.channels_last:
                    acc = acc.contiguous(memory_format=torch.channels_last)
            nodes.append(acc)
        return nodes[-1]


class _BasicBlock(nn.Module):
    """K ResNetBasicblocks (identical structure in every arch), grouped."""

    def __init__(self, blocks: list[ResNetBasicblock]) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn([b.conv_a for b in blocks])
        self.conv_b = _relu_conv_bn([b.conv_b for b in blocks])
        first = blocks[0].downsample
        if first is None:
            self.downsample: nn.Module | None = None
        elif isinstance(first, ReLUConvBN):
            self.downsample = _relu_conv_bn([b.downsample for b in blocks])
        else:
            pool = first[0]
            self.downsample = nn.Sequential(type(pool)(pool.kernel_size, stride=pool.stride, padding=pool.padding,
                                                       ceil_mode=pool.ceil_mode),
                                            _Conv([b.downsample[1] for b in blocks]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_b(self.conv_a(x))
        return (x if self.downsample is None else self.downsample(x)) + out


class StackedNB201(nn.Module):
    """K TinyNetworks of one shape (C, N, topology, channels, outputs; any cells) as one network.

    `forward(x)` takes the batch all K archs train on, (B, in_channels, *spatial), and returns
    (B, K, num_outputs[, *spatial]): arch k's output is `out[:, k]`, equal to `nets[k](x)` up to rounding.
    """

    def __init__(self, nets: list[TinyNetwork], channels_last: bool | None = None) -> None:
        super().__init__()
        if not nets:
            raise InputError("StackedNB201 needs at least one network")
        first = nets[0]
        shape = (first.C, first.N, first.topology, first.in_channels, first.num_outputs)
        for net in nets:
            if not isinstance(net, TinyNetwork) or (net.C, net.N, net.topology, net.in_channels,
                                                    net.num_outputs) != shape:
                raise InputError("StackedNB201 stacks TinyNetworks of one shape (C, N, topology, channels, outputs)")
        self.nets = nets  # plain list: not submodules
        self.K, self.dim, self.dense = len(nets), first.dim, first.dense
        self.channels_last = (CHANNELS_LAST if channels_last is None else channels_last) and self.dim == 2
        self.stem = nn.Sequential(_Conv([n.stem[0] for n in nets], shared_input=True),
                                  _BatchNorm([n.stem[1] for n in nets]))
        self.cells = nn.ModuleList(
            (_Cell if isinstance(cell, InferCell) else _BasicBlock)([n.cells[i] for n in nets])
            for i, cell in enumerate(first.cells))
        self.lastact = nn.Sequential(_BatchNorm([n.lastact[0] for n in nets]), nn.ReLU())
        self.head_weight = nn.Parameter(torch.stack([n.classifier.weight.detach() for n in nets]).clone())
        self.head_bias = nn.Parameter(torch.stack([n.classifier.bias.detach() for n in nets]).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of all K archs: (B, K, num_outputs) for point tasks, (B, K, num_outputs, *spatial) for dense."""
        if self.channels_last and x.device.type == "cpu":  # GPUs keep channels-first (not measured there)
            x = x.contiguous(memory_format=torch.channels_last)
        h = self.lastact(self._body(self.stem(x)))
        b = h.shape[0]
        if not self.dense:
            pooled = h.mean(dim=tuple(range(2, h.dim()))).view(b, self.K, -1)
            return torch.einsum("bkc,koc->bko", pooled, self.head_weight) + self.head_bias
        spatial = h.shape[2:]
        h = h.view(b, self.K, -1, *spatial).movedim(2, -1)  # (B, K, *spatial, C)
        out = torch.einsum("bk...c,koc->bk...o", h, self.head_weight)
        out = out + self.head_bias.view(1, self.K, *([1] * len(spatial)), -1)
        return out.movedim(-1, 2)

    def _body(self, h: torch.Tensor) -> torch.Tensor:
        for cell in self.cells:
            h = cell(h)
        return h

    @torch.no_grad()
    def unstack(self) -> list[TinyNetwork]:
        """Write the stack's weights and BN statistics back into the K networks; return them."""
        for module in self.modules():
            if isinstance(module, (_Conv, _BatchNorm)):
                module.unstack()
        for k, net in enumerate(self.nets):
            net.classifier.weight.copy_(self.head_weight[k])
            net.classifier.bias.copy_(self.head_bias[k])
        return self.nets
