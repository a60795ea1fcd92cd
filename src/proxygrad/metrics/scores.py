"""One entry point for the per-image metrics of a rendering (its activation is scored by the engine itself)."""
from __future__ import annotations

from typing import Any

from torch import Tensor

from ..models.spec import InputSpec
from .features import DEFAULT_BATCH, logits
from .inputs import check_device, check_images, check_real, check_targets, require_classes, resolve
from .plausibility import check_k, plausibility


def _decisions(out: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    if int(t.max()) >= out.shape[1]:
        raise ValueError(f"targets must be < {out.shape[1]} (the model's outputs), got {int(t.max())}")
    predicted = out.argmax(1)
    return predicted, (predicted == t).float()


def score_images(images: Tensor, targets: Any, *, model: Any, spec: InputSpec | None = None,
                 second: Any = None, evaluator: Any = None, real: tuple[Tensor, Any] | None = None,
                 k: int | None = None, batch_size: int = DEFAULT_BATCH) -> dict[str, Tensor]:
    """Per-image metrics of visualizations (N, C, H, W) in [-1, 1] with target classes (N,).

    Args:
        model: the visualized network (LoadedModel, or nn.Module with ``spec``).
        second: an independently trained network (LoadedModel or (module, spec)) for transferability.
        evaluator: the network judging plausibility (LoadedModel or (module, spec)); default ``model``.
        real: (images (M, C, H, W) in [-1, 1], labels (M,)) of real images; enables plausibility.
        k: plausibility over the k most similar real images (None: all of the class).

    Returns:
        {"predicted": int64 (N,), "on_target": float 0/1 (N,) (its mean is the target share)}, plus
        "second_predicted" and "transfer" (0/1; mean = transferability) with ``second``, and "plausibility"
        (mean cosine in [-1, 1], see :mod:`proxygrad.metrics.plausibility`) with ``real``. All on the
        images' device.
    """
    net, spec = resolve(model, spec)
    check_images(images, spec)
    check_device(net, images)
    t = check_targets(targets, images.shape[0], images.device, spec.num_classes)
    other = resolve(second, None, "second") if second is not None else None
    judge = resolve(evaluator, None, "evaluator") if evaluator is not None else (net, spec)
    if other is not None:
        check_images(images, other[1])
        check_device(other[0], images, "second")
    if real is not None:
        check_k(k)
        check_images(images, judge[1])
        check_device(judge[0], images, "evaluator")
        require_classes(t, check_real(real, judge[1], images.device)[1], "plausibility")
    predicted, hit = _decisions(logits(images, model=net, spec=spec, batch_size=batch_size), t)
    scores = {"predicted": predicted, "on_target": hit}
    if other is not None:
        scores["second_predicted"], scores["transfer"] = _decisions(
            logits(images, model=other, batch_size=batch_size), t)
    if real is not None:
        scores["plausibility"] = plausibility(images, t, evaluator=judge, real=real, k=k, batch_size=batch_size)
    return scores
