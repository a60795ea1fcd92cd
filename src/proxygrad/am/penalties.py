"""Differentiable image penalties, one value per image: Tensor (B,) for x (B, C, H, W)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def total_variation(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Isotropic total variation (B,) of x (B, C, H, W): sum over channels and pixels of sqrt(dx^2 + dy^2 + eps).

    Forward differences with replicate boundary (the difference past the last row / column is 0).
    Channels are summed (each channel is its own TV, as an L2 penalty sums channels too). ``eps``
    (default 1e-8, in squared image units) keeps the gradient -div(grad x / |grad x|) defined where
    grad x = 0; it adds sqrt(eps) per pixel and channel, so a constant image has TV = C*H*W*sqrt(eps).
    """
    if x.dim() != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
    dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
    dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    return (dx.square() + dy.square() + eps).sqrt().sum(dim=(1, 2, 3))


def l2(x: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm (B,) of each image of x (B, ...): sum of x^2 over all but the first dimension."""
    return x.square().flatten(1).sum(1)
