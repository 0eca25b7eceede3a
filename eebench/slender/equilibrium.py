"""Gradient equilibrium (COST-EFF's multi-exit training, spec methods §7.2 step 2; Li et al. 2019).

The identity in the forward pass. Backward, with 0-based block index i of L: the gradient coming back from the deeper
blocks into block i's output is multiplied by (L−i−1), and the total (that plus the gradient from exit i) is divided
by (L−i) before it enters block i — so no block is dominated by the sum of the losses of every exit above it.
"""
from __future__ import annotations

import torch


class GradientRescale(torch.autograd.Function):
    """y = x; dL/dx = scale · dL/dy."""

    @staticmethod
    def forward(ctx, x, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def rescale(x: torch.Tensor, scale: float) -> torch.Tensor:
    return GradientRescale.apply(x, float(scale))


def equilibrium_split(hidden: torch.Tensor, block: int, num_layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(what exit ``block`` reads, what the deeper blocks read) of block ``block``'s output (1-based ``block``;
    0-based i = block − 1, so L−i = num_layers − block + 1)."""
    total = rescale(hidden, 1.0 / (num_layers - block + 1))
    return total, rescale(total, num_layers - block)
