"""batch_norm_rows: training-mode BatchNorm of channels-last activations, with two-pass batch statistics.

`torch.ops.nb360.batch_norm_rows(x, weight, bias, eps)` normalises the columns of a (rows, channels)
matrix -- a channels-last (B, C, H, W) tensor seen as its (B*H*W, C) rows, a view -- and returns
(y, mean, biased var); its backward is one more op. CPU only (csrc/ops/batch_norm_rows.cpp says why it
exists: ATen's channels-last BatchNorm computes the variance in one pass, with ~5x the rounding error);
`batch_norm_channels_last` falls back to `F.batch_norm` on other devices. `batch_norm_rows_reference`
is the float64 plain-PyTorch oracle the tests compare against.
"""

from __future__ import annotations

import torch

from .._extension import load_ops

load_ops()


def batch_norm_rows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                    eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y, mean, biased var) of training-mode BatchNorm over the rows of x (M, N), per column."""
    return torch.ops.nb360.batch_norm_rows.default(x, weight, bias, eps)


def batch_norm_rows_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                              eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Plain-PyTorch batch_norm_rows, the test oracle."""
    var, mean = torch.var_mean(x, 0, correction=0)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias, mean, var


@torch.library.register_fake("nb360::batch_norm_rows")
def _fake(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float):
    torch._check(x.dim() == 2, lambda: "batch_norm_rows: x must be a (rows, channels) matrix")
    n = x.shape[1]
    return torch.empty_like(x, memory_format=torch.contiguous_format), x.new_empty(n), x.new_empty(n)


@torch.library.register_fake("nb360::batch_norm_rows_backward")
def _backward_fake(grad: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
                   weight: torch.Tensor, eps: float):
    n = x.shape[1]
    return torch.empty_like(x, memory_format=torch.contiguous_format), x.new_empty(n), x.new_empty(n)


def _setup_context(ctx, inputs, output) -> None:
    x, weight, _bias, eps = inputs
    _y, mean, var = output
    ctx.save_for_backward(x, mean, var, weight)
    ctx.eps = eps


def _backward(ctx, grad: torch.Tensor, _grad_mean, _grad_var):
    # mean and var are statistics for the running averages, not differentiated (as in ATen's BatchNorm)
    x, mean, var, weight = ctx.saved_tensors
    grad_x, grad_w, grad_b = torch.ops.nb360.batch_norm_rows_backward.default(grad, x, mean, var, weight, ctx.eps)
    return grad_x, grad_w, grad_b, None


torch.library.register_autograd("nb360::batch_norm_rows", _backward, setup_context=_setup_context)


def batch_norm_channels_last(x: torch.Tensor, bn: torch.nn.modules.batchnorm._BatchNorm) -> torch.Tensor:
    """`bn(x)` for a channels-last (B, C, H, W) x on the CPU in training mode, through batch_norm_rows.

    Updates bn's running statistics as `nn.BatchNorm2d` does (momentum, unbiased variance); anything else
    (evaluation, other devices, layouts or dtypes, cumulative averages) is `bn(x)` itself.
    """
    usable = (bn.training and x.device.type == "cpu" and x.dim() == 4 and bn.momentum is not None
              and x.dtype in (torch.float32, torch.float64) and x.is_contiguous(memory_format=torch.channels_last))
    if not usable:
        return bn(x)
    b, c, h, w = x.shape
    weight = bn.weight if bn.weight is not None else x.new_ones(c)
    bias = bn.bias if bn.bias is not None else x.new_zeros(c)
    rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # a view: channels-last memory is these rows
    y, mean, var = batch_norm_rows(rows, weight, bias, bn.eps)
    if bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            m = rows.shape[0]
            bn.running_mean.mul_(1 - bn.momentum).add_(mean, alpha=bn.momentum)
            bn.running_var.mul_(1 - bn.momentum).add_(var * (m / (m - 1)), alpha=bn.momentum)
            bn.num_batches_tracked.add_(1)
    return y.view(b, h, w, c).permute(0, 3, 1, 2)
