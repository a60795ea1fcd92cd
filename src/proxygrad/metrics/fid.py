"""Frechet distance between feature sets (FID) and its per-class version for visualizations.

    FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

with the sample means mu and covariances S (ddof = 1) of two feature sets. The matrix square root is
``scipy.linalg.sqrtm`` (real part kept); when it is not finite, as happens for the singular covariances of
small samples, it is recomputed with eps * I added to both covariances (pytorch-fid's rule). Round-off can
give tiny negative values; the result is clipped at 0.

Bias: FID estimated from N samples is biased upwards, by roughly O(D / N), and with N <= D the covariances
are singular. Values from few images (per-class FID of a handful of seeds) are only comparable at equal N
and equal feature dimension D: report N (``GroupScores.counts``) with every FID.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from ..models.spec import InputSpec
from .features import DEFAULT_BATCH, penultimate_features
from .groups import GroupScores
from .inputs import check_images, check_real, check_targets, require_classes, resolve

EPS = 1e-6


def _as_features(x: Any, what: str) -> np.ndarray:
    arr = x.detach().cpu().double().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"{what} must have shape (N, D) with N >= 2 (a covariance needs 2 samples), "
                         f"got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return arr


def _sqrtm(m: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # singular products warn; the caller checks finiteness itself
        warnings.simplefilter("ignore")
        return np.real(scipy.linalg.sqrtm(m))


def frechet_distance(a: Any, b: Any, *, eps: float = EPS) -> float:
    """FID >= 0 between features ``a`` (N, D) and ``b`` (M, D), N, M >= 2 (tensors or arrays; float64 inside)."""
    a, b = _as_features(a, "a"), _as_features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: a has {a.shape[1]}, b has {b.shape[1]}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = _sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
    diff = mu1 - mu2
    fid = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    return max(float(fid), 0.0)


def _check_class_sizes(targets: Tensor, real_labels: Tensor) -> None:
    """ValueError unless every target class has >= 2 visualizations and >= 2 real images."""
    few = sorted(c for c in targets.unique().tolist() if int((targets == c).sum()) < 2)
    if few:
        raise ValueError(f"per-class FID needs at least 2 visualizations of each class; classes {few} have 1")
    require_classes(targets, real_labels, "per-class FID", minimum=2)


def class_fid_from_features(features: Tensor, targets: Tensor, real_features: Tensor,
                            real_labels: Tensor) -> GroupScores:
    """Per target class c, FID between the visualizations of c (features (N, D), targets (N,)) and the real
    images of c (real_features (M, D), real_labels (M,)); ``counts`` holds the number of visualizations."""
    _check_class_sizes(targets, real_labels)
    classes = sorted(targets.unique().tolist())
    per = {c: frechet_distance(features[targets == c], real_features[real_labels == c]) for c in classes}
    counts = {c: int((targets == c).sum()) for c in classes}
    return GroupScores(per, counts, float(np.mean(list(per.values()))))


def class_fid(images: Tensor, targets: Any, *, evaluator: Any, real: tuple[Tensor, Any],
              spec: InputSpec | None = None, batch_size: int = DEFAULT_BATCH) -> GroupScores:
    """Per-class FID of visualizations (N, C, H, W) in [-1, 1] with targets (N,) against real images of their
    classes (``real`` = (images (M, C, H, W), labels (M,))), in the evaluator's penultimate features.

    Lower is closer to the real images. Each class needs >= 2 visualizations and >= 2 real images; the mean is
    over classes (each weighted equally). See the module docstring on the bias of FID from few images.
    """
    net, spec = resolve(evaluator, spec, "evaluator")
    check_images(images, spec)
    t = check_targets(targets, images.shape[0], images.device)
    real_images, real_labels = check_real(real, spec, images.device)
    _check_class_sizes(t, real_labels)
    keep = torch.isin(real_labels, t.unique())
    feats = penultimate_features(images, model=net, spec=spec, batch_size=batch_size)
    real_feats = penultimate_features(real_images[keep], model=net, spec=spec, batch_size=batch_size)
    return class_fid_from_features(feats, t, real_feats, real_labels[keep])
