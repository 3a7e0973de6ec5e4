"""mixed_sum: the weighted sum of a mixed edge, sum_k weights[k] * inputs[k], as a torch custom op.

The op (`torch.ops.nb360.mixed_sum`) reads every input once and writes the output once; its
backward computes all architecture-weight gradients in one pass over the output gradient.
`mixed_sum_reference` is the plain-PyTorch oracle the tests compare against.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._extension import load_ops

load_ops()


def mixed_sum(inputs: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Return sum_k weights[k] * inputs[k] (inputs: equal shapes; weights: shape [len(inputs)])."""
    return torch.ops.nb360.mixed_sum.default(list(inputs), weights)


def mixed_sum_reference(inputs: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Plain-PyTorch mixed_sum, the test oracle."""
    return sum(w * x for w, x in zip(weights.unbind(0), inputs))


@torch.library.register_fake("nb360::mixed_sum")
def _mixed_sum_fake(inputs: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    torch._check(len(inputs) >= 1, lambda: "mixed_sum needs at least one input")
    torch._check(weights.shape == (len(inputs),), lambda: "mixed_sum: weights must have one entry per input")
    return torch.empty_like(inputs[0], memory_format=torch.contiguous_format)


@torch.library.register_fake("nb360::mixed_sum_backward")
def _mixed_sum_backward_fake(grad: torch.Tensor, inputs: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(weights)


def _setup_context(ctx, inputs, output) -> None:
    xs, weights = inputs
    ctx.save_for_backward(weights, *xs)


def _backward(ctx, grad: torch.Tensor):
    weights, *xs = ctx.saved_tensors
    grad = grad.contiguous()
    grad_inputs = [grad * w for w in weights.unbind(0)] if ctx.needs_input_grad[0] else None
    grad_weights = torch.ops.nb360.mixed_sum_backward.default(grad, xs, weights) if ctx.needs_input_grad[1] else None
    return grad_inputs, grad_weights


torch.library.register_autograd("nb360::mixed_sum", _backward, setup_context=_setup_context)
