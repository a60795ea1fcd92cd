"""What the metrics accept: a classifier with its input spec, images in [-1, 1] and target classes.

A classifier is given as a :class:`~proxygrad.models.registry.LoadedModel` (anything with ``.model`` and
``.spec``, a ``Normalized`` too), as an ``nn.Module`` with an explicit ``spec``, or as a ``(module, spec)`` pair.
All checks raise ``ValueError`` before any work is done.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from ..models.spec import InputSpec


def resolve(model: Any, spec: InputSpec | None = None, what: str = "model") -> tuple[nn.Module, InputSpec]:
    """(network, spec) of a LoadedModel, a ``(module, spec)`` pair or a module; an explicit ``spec`` wins."""
    if isinstance(model, tuple) and len(model) == 2:
        model, spec = model[0], spec or model[1]
    elif isinstance(getattr(model, "spec", None), InputSpec) and isinstance(getattr(model, "model", None), nn.Module):
        model, spec = model.model, spec or model.spec  # LoadedModel, or Normalized (its bare network)
    if not isinstance(model, nn.Module):
        raise ValueError(f"{what} must be an nn.Module, a LoadedModel or a (module, spec) pair, "
                         f"got {type(model).__name__}")
    if not isinstance(spec, InputSpec):
        raise ValueError(f"{what} needs an InputSpec: pass spec=... or a LoadedModel (got spec={spec!r})")
    return model, spec


def check_images(images: Any, spec: InputSpec, what: str = "images") -> Tensor:
    """``images``: a float tensor (N >= 1, C, H, W) with the spec's C channels and finite values."""
    if not isinstance(images, Tensor):
        raise ValueError(f"{what} must be a torch.Tensor (N, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"{what} must have shape (N, C, H, W) with N >= 1, got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{what} must be floating point (values in [-1, 1]), got {images.dtype}")
    if images.shape[1] != spec.channels:
        raise ValueError(f"{what} have {images.shape[1]} channels but the model's spec expects {spec.channels}")
    if not torch.isfinite(images).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return images


def check_targets(targets: Any, n: int, device: torch.device, num_classes: int | None = None,
                  what: str = "targets") -> Tensor:
    """``targets`` as an int64 tensor (n,) on ``device``: one class index >= 0 (and < num_classes) per image."""
    if not isinstance(targets, Tensor):
        try:
            targets = torch.as_tensor(np.asarray(list(targets)))
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{what} must be a sequence of integer class indices, got {targets!r}") from None
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise ValueError(f"{what} must hold integer class indices, got dtype {targets.dtype}")
    t = targets.to(device=device, dtype=torch.int64)
    if t.dim() != 1 or t.shape[0] != n:
        raise ValueError(f"{what} must have shape ({n},), one per image, got {tuple(t.shape)}")
    if n and int(t.min()) < 0:
        raise ValueError(f"{what} must be >= 0, got {int(t.min())}")
    if n and num_classes is not None and int(t.max()) >= num_classes:
        raise ValueError(f"{what} must be < {num_classes} (the model's classes), got {int(t.max())}")
    return t


def check_device(model: nn.Module, images: Tensor, what: str = "model") -> None:
    """ValueError when the model's parameters are not on the images' device."""
    param = next(model.parameters(), None)
    if param is not None and param.device != images.device:
        raise ValueError(f"{what} is on {param.device} but the images are on {images.device}; "
                         f"move one of them (metrics run on the images' device)")


def check_real(real: Any, spec: InputSpec, device: torch.device) -> tuple[Tensor, Tensor]:
    """``real`` = (images (M, C, H, W) in [-1, 1], labels (M,)), moved to ``device``."""
    if not isinstance(real, Sequence) or len(real) != 2:
        raise ValueError(f"real must be a pair (images, labels), got {type(real).__name__}")
    images = check_images(real[0], spec, "real images").to(device)
    return images, check_targets(real[1], images.shape[0], device, what="real labels")


def require_classes(targets: Tensor, labels: Tensor, metric: str, minimum: int = 1) -> None:
    """ValueError when some target class has fewer than ``minimum`` real images (``labels``)."""
    counts = {c: int((labels == c).sum()) for c in targets.unique().tolist()}
    short = sorted(c for c, n in counts.items() if n < minimum)
    if short:
        raise ValueError(f"{metric} needs at least {minimum} real image(s) of every target class; classes "
                         f"{short} have {[counts[c] for c in short]}")
