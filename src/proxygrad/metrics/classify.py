"""Class decisions on visualizations: predicted classes, target share and transferability.

- target share: the fraction of images that the network classifies as their target (argmax of its outputs).
- transferability (MACO, Fel et al. 2023): the target share under a SECOND, independently trained network,
  i.e. whether the visualization carries the class to a network it was not optimized for.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor

from ..models.spec import InputSpec
from .features import DEFAULT_BATCH, logits
from .inputs import check_images, check_targets, resolve


def predicted_classes(images: Tensor, *, model: Any, spec: InputSpec | None = None,
                      batch_size: int = DEFAULT_BATCH) -> Tensor:
    """Argmax classes, int64 (N,), for images (N, C, H, W) in [-1, 1]."""
    return logits(images, model=model, spec=spec, batch_size=batch_size).argmax(1)


def on_target(images: Tensor, targets: Any, *, model: Any, spec: InputSpec | None = None,
              batch_size: int = DEFAULT_BATCH) -> Tensor:
    """Per image, 1.0 when classified as its target class and 0.0 otherwise, float32 (N,)."""
    net, spec = resolve(model, spec)
    check_images(images, spec)
    t = check_targets(targets, images.shape[0], images.device, spec.num_classes)
    out = logits(images, model=net, spec=spec, batch_size=batch_size)
    if int(t.max()) >= out.shape[1]:
        raise ValueError(f"targets must be < {out.shape[1]} (the model's outputs), got {int(t.max())}")
    return (out.argmax(1) == t).float()


def target_share(images: Tensor, targets: Any, *, model: Any, spec: InputSpec | None = None,
                 batch_size: int = DEFAULT_BATCH) -> float:
    """Fraction in [0, 1] of the images that ``model`` classifies as their target."""
    return float(on_target(images, targets, model=model, spec=spec, batch_size=batch_size).mean())


def transferability(images: Tensor, targets: Any, *, second: Any, spec: InputSpec | None = None,
                    batch_size: int = DEFAULT_BATCH) -> float:
    """Target share in [0, 1] under ``second``, a network trained independently of the one visualized."""
    return target_share(images, targets, model=second, spec=spec, batch_size=batch_size)
