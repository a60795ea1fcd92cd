"""Forward passes for the metrics: logits and penultimate features of any classifier, batched.

Every pass runs under ``torch.no_grad`` with the network in eval mode (each module's own training flag is
restored afterwards), on the images' device. Images in [-1, 1] are resized bilinearly to the spec's
(H, W) when they differ, then mapped to the network's input by ``spec.to_model_input``.

Penultimate features are the input of the network's LAST ``nn.Linear`` (in ``model.modules()`` order),
captured by a forward hook and flattened to (N, D); for the usual classifiers that is the pooled feature
vector the classification head sees.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.spec import InputSpec
from .inputs import check_device, check_images, resolve

DEFAULT_BATCH = 256


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and no_grad inside; every module's training flag restored on exit."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        for m, flag in flags:
            m.training = flag


def model_input(images: Tensor, spec: InputSpec) -> Tensor:
    """Images (B, C, H, W) in [-1, 1] -> the network's input (B, C, *spec.size): bilinear resize (antialiased when
    shrinking) + normalize."""
    if tuple(images.shape[-2:]) != tuple(spec.size):
        shrink = spec.size[0] < images.shape[-2] or spec.size[1] < images.shape[-1]
        images = F.interpolate(images, size=spec.size, mode="bilinear", align_corners=False, antialias=shrink)
    return spec.to_model_input(images)


def last_linear(model: nn.Module) -> nn.Linear:
    """The network's last ``nn.Linear`` module; ValueError when it has none."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer, so it has no penultimate features "
                         f"(the input of its last nn.Linear); pass a classifier with a linear head")
    return linears[-1]


def _checked(images: Tensor, model: Any, spec: InputSpec | None, batch_size: int) -> tuple[nn.Module, InputSpec]:
    net, spec = resolve(model, spec)
    check_images(images, spec)
    check_device(net, images)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return net, spec


def logits(images: Tensor, *, model: Any, spec: InputSpec | None = None,
           batch_size: int = DEFAULT_BATCH) -> Tensor:
    """The network's outputs (N, K) for images (N, C, H, W) in [-1, 1]; on the images' device."""
    net, spec = _checked(images, model, spec, batch_size)
    with evaluating(net):
        return torch.cat([net(model_input(b, spec)) for b in images.split(batch_size)])


def penultimate_features(images: Tensor, *, model: Any, spec: InputSpec | None = None,
                         batch_size: int = DEFAULT_BATCH) -> Tensor:
    """Input of the last ``nn.Linear`` (N, D) for images (N, C, H, W) in [-1, 1]; on the images' device.

    When that layer runs several times in one forward pass, its last call counts.
    """
    net, spec = _checked(images, model, spec, batch_size)
    head = last_linear(net)
    captured: list[Tensor] = []
    hook = head.register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
    out = []
    try:
        with evaluating(net):
            for batch in images.split(batch_size):
                captured.clear()
                net(model_input(batch, spec))
                if not captured:
                    raise ValueError(f"the last nn.Linear of {type(net).__name__} did not run in its forward pass")
                out.append(captured[-1].reshape(batch.shape[0], -1))
    finally:
        hook.remove()
    return torch.cat(out)
