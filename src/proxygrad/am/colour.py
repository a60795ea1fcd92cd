"""Lucid's colour decorrelation: a fixed 3x3 matrix between decorrelated channels and RGB.

C is the square root of ImageNet's colour correlation as Lucid/Lucent (and Horama, transposed) ship it;
M = C / (largest column norm of C), so M's largest column has norm 1. ``recorrelate`` maps decorrelated
images to RGB per pixel (x <- M @ x, i.e. x @ M^T on the channel axis), ``decorrelate`` applies M^-1.
One-channel images pass through both unchanged.
"""
from __future__ import annotations

import torch
from torch import Tensor

COLOUR_SQRT = ((0.26, 0.09, 0.02),
               (0.27, 0.00, -0.05),
               (0.27, -0.09, 0.03))


def colour_matrix() -> Tensor:
    """M = C / (largest column norm of C), float64 (3, 3)."""
    c = torch.tensor(COLOUR_SQRT, dtype=torch.float64)
    return c / torch.linalg.vector_norm(c, dim=0).max()


def _apply(matrix: Tensor, x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] not in (1, 3):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} expects a tensor of shape (B, 1 or 3, H, W), got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{name} expects a floating-point tensor, got {x.dtype}")
    if x.shape[1] == 1:
        return x
    return torch.einsum("ij,bjhw->bihw", matrix.to(device=x.device, dtype=x.dtype), x)


def recorrelate(x: Tensor) -> Tensor:
    """Decorrelated (B, C, H, W) -> RGB (B, C, H, W): x <- M @ x per pixel; identity for C == 1."""
    return _apply(colour_matrix(), x, "recorrelate")


def decorrelate(x: Tensor) -> Tensor:
    """RGB (B, C, H, W) -> decorrelated (B, C, H, W): x <- M^-1 @ x per pixel; identity for C == 1."""
    return _apply(torch.linalg.inv(colour_matrix()), x, "decorrelate")
