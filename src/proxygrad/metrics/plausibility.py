"""Plausibility (MACO, Fel et al. NeurIPS 2023): how close a visualization is to real images of its class.

MACO calls a visualization plausible when it resembles the images of the class it represents, measured in an
evaluator network's representation; higher is more natural. We could not retrieve the paper's exact recipe
(its text describes a Deep-KNN-style out-of-distribution score on the network's representations), so we
choose and state ours:

    plausibility(x) = mean over the real images r of class t(x) of cos(phi(x), phi(r))

with ``phi`` the evaluator's penultimate features (input of its last nn.Linear) and t(x) the visualization's
target class. ``k`` set to an int averages only the k most similar real images instead (k = 1: the nearest
neighbour's similarity, the Deep-KNN flavour). The cosine of a zero feature vector is defined as 0.
Values lie in [-1, 1]; for ReLU features (non-negative) in [0, 1].
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..models.spec import InputSpec
from .features import DEFAULT_BATCH, penultimate_features
from .inputs import check_images, check_real, check_targets, require_classes, resolve


def _unit_rows(x: Tensor) -> Tensor:
    """Rows of ``x`` (N, D) scaled to norm 1; zero rows stay zero."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarities (N, M) between the rows of ``a`` (N, D) and ``b`` (M, D); 0 for a zero row."""
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected features (N, D) and (M, D), got {tuple(a.shape)} and {tuple(b.shape)}")
    return _unit_rows(a) @ _unit_rows(b).T


def check_k(k: int | None) -> None:
    """ValueError unless ``k`` is None or a positive int."""
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be None or a positive int, got {k!r}")


def plausibility_from_features(features: Tensor, targets: Tensor, real_features: Tensor, real_labels: Tensor,
                               *, k: int | None = None) -> Tensor:
    """Per visualization, the mean cosine (N,) to the real features of its target class (see module docstring).

    Args:
        features: (N, D) evaluator features of the visualizations; targets: int64 (N,) their classes.
        real_features: (M, D) evaluator features of real images; real_labels: int64 (M,) their classes.
        k: None averages over all real images of the class; an int >= 1, over its k most similar ones.
    """
    check_k(k)
    if features.shape[0] != targets.shape[0] or real_features.shape[0] != real_labels.shape[0]:
        raise ValueError("features and their labels must have the same length")
    require_classes(targets, real_labels, "plausibility")
    out = torch.empty(features.shape[0], dtype=features.dtype, device=features.device)
    for c in targets.unique().tolist():
        sims = cosine_matrix(features[targets == c], real_features[real_labels == c])
        if k is not None:
            sims = sims.topk(min(k, sims.shape[1]), dim=1).values
        out[targets == c] = sims.mean(1)
    return out


def plausibility(images: Tensor, targets: Any, *, evaluator: Any, real: tuple[Tensor, Any],
                 spec: InputSpec | None = None, k: int | None = None, batch_size: int = DEFAULT_BATCH) -> Tensor:
    """Plausibility (N,) of visualizations (N, C, H, W) in [-1, 1] with target classes (N,).

    ``evaluator``: the network whose penultimate features judge (LoadedModel, or module with ``spec``);
    ``real``: (images (M, C, H, W) in [-1, 1], labels (M,)), only those of the target classes are used.
    """
    check_k(k)
    net, spec = resolve(evaluator, spec, "evaluator")
    check_images(images, spec)
    t = check_targets(targets, images.shape[0], images.device)
    real_images, real_labels = check_real(real, spec, images.device)
    require_classes(t, real_labels, "plausibility")
    keep = torch.isin(real_labels, t.unique())
    feats = penultimate_features(images, model=net, spec=spec, batch_size=batch_size)
    real_feats = penultimate_features(real_images[keep], model=net, spec=spec, batch_size=batch_size)
    return plausibility_from_features(feats, t, real_feats, real_labels[keep], k=k)
