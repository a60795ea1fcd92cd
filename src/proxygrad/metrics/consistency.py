"""Seed consistency: do renderings of the same objective from different seeds agree?

For two images x, y of one objective, the Pearson correlation of their pixels (all channels and positions),
i.e. the cosine of the mean-centred images:

    r(x, y) = <x - mean(x), y - mean(y)> / (||x - mean(x)|| ||y - mean(y)||)   in [-1, 1]

The score of an objective is the mean of r over its pairs of distinct images; the set's score is the mean over
objectives. Convention for constant images (zero variance, r undefined): r = 0 with every image, another
constant one included -- a flat image carries no pattern to agree on. So the result is never NaN.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .groups import GroupScores, group_indices


def correlation_matrix(images: Tensor) -> Tensor:
    """Pearson correlations (n, n), float64, between the n images (n, ...); rows of constant images are 0."""
    pixels = images.reshape(images.shape[0], -1)
    constant = (pixels.amax(1) == pixels.amin(1))[:, None]
    x = pixels.double()
    x = x - x.mean(1, keepdim=True)
    unit = x / x.norm(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    unit = torch.where(constant, torch.zeros_like(unit), unit)
    return unit @ unit.T


def mean_pairwise_correlation(images: Tensor) -> float:
    """Mean Pearson correlation over the n (n - 1) / 2 pairs of distinct images (n >= 2, ...)."""
    n = images.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 images for a pairwise correlation, got {n}")
    iu = torch.triu_indices(n, n, offset=1, device=images.device)
    return float(correlation_matrix(images)[iu[0], iu[1]].mean())


def seed_consistency(images: Tensor, objectives: Any) -> GroupScores:
    """Seed consistency of renderings (N, C, H, W), one objective key per image (``objectives``, length N).

    Objectives with a single image have no pair and are left out; ``counts`` gives the images per objective
    that entered. ValueError when no objective has two images.
    """
    if not isinstance(images, Tensor) or images.dim() < 2 or images.shape[0] == 0:
        raise ValueError(f"images must be a tensor (N, ...) with N >= 1, got "
                         f"{tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    groups = {k: idx for k, idx in group_indices(objectives, images.shape[0], "objectives").items() if len(idx) > 1}
    if not groups:
        raise ValueError("seed consistency needs at least one objective rendered from 2 or more seeds")
    per = {k: mean_pairwise_correlation(images[idx]) for k, idx in groups.items()}
    return GroupScores(per, {k: len(idx) for k, idx in groups.items()}, float(np.mean(list(per.values()))))
