"""Gradient magnitudes and activation statistics in rectifier ResNets (paper Section 7, Table 5, Figure 4,
Appendix 11.3).

- :func:`leaky_relu_gaussian_mean` / :func:`leaky_relu_gaussian_variance`: Appendix 11.3's closed forms for a
  Leaky ReLU with negative slope s applied to X ~ N(0, 1).
- :func:`resnet18`: a randomly initialized torchvision ResNet18, optionally without BatchNorm (every
  ``BatchNorm2d`` replaced by ``Identity``).
- :func:`probe`: one forward/backward pass of the cross-entropy loss through a model patched with
  relu / leaky(s) / proxygrad(s); returns the mean absolute derivative of the loss with respect to the output
  of chosen modules (Table 5 uses ``layer1.0.conv1``) and the standard deviation of every BatchNorm input
  (Figure 4).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..surrogates import MODES, patched

TABLE5_POSITION = "layer1.0.conv1"


def leaky_relu_gaussian_mean(slope: float | np.ndarray) -> float | np.ndarray:
    """E[LeakyReLU_s(X)] for X ~ N(0, 1): (1 - s) / sqrt(2 pi) (Appendix 11.3). ``slope`` scalar or array."""
    s = np.asarray(slope, dtype=float)
    return _scalar_or_array((1 - s) / math.sqrt(2 * math.pi))


def leaky_relu_gaussian_variance(slope: float | np.ndarray) -> float | np.ndarray:
    """Var[LeakyReLU_s(X)] for X ~ N(0, 1): (s^2 + 1) / 2 - (1 - s)^2 / (2 pi) (Appendix 11.3); increases with
    s on [0, 1]. ``slope`` scalar or array."""
    s = np.asarray(slope, dtype=float)
    return _scalar_or_array((s ** 2 + 1) / 2 - (1 - s) ** 2 / (2 * math.pi))


def _scalar_or_array(value: np.ndarray) -> float | np.ndarray:
    return float(value) if value.ndim == 0 else value


def resnet18(num_classes: int = 1000, batchnorm: bool = True) -> nn.Module:
    """A randomly initialized torchvision ResNet18 (its own Kaiming initialization, global RNG).

    ``batchnorm=False`` replaces every ``BatchNorm2d`` by ``nn.Identity`` (the convolutions keep the weights they
    would have had with BatchNorm, for the same RNG state).
    """
    import torchvision

    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    if not batchnorm:
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.BatchNorm2d):
                    setattr(parent, name, nn.Identity())
    return model


@dataclass
class Probe:
    """One pass: ``gradients[name]`` = mean |dL/d output of module name| (L: mean cross-entropy over the batch),
    ``bn_input_std[name]`` = std of the input of BatchNorm ``name`` per channel (over batch and space), averaged
    over channels; ``loss`` = L."""

    gradients: dict[str, float]
    bn_input_std: dict[str, float]
    loss: float


def batchnorm_names(model: nn.Module) -> list[str]:
    """Names of the model's BatchNorm layers, in forward order for sequential models."""
    kinds = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    return [name for name, module in model.named_modules() if isinstance(module, kinds)]


def _modules(model: nn.Module, names: list[str]) -> dict[str, nn.Module]:
    available = dict(model.named_modules())
    unknown = [n for n in names if n not in available or not n]
    if unknown:
        valid = [n for n, m in available.items() if n and isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))]
        raise ValueError(f"unknown position(s) {unknown}; valid positions include: {', '.join(valid)}")
    return {n: available[n] for n in names}


def _channel_std(x: torch.Tensor) -> float:
    """Std per channel over every other dimension of (B, C, ...), averaged over channels."""
    per_channel = x.detach().transpose(0, 1).reshape(x.shape[1], -1)
    return per_channel.double().std(dim=1).mean().item()


def probe(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, positions: list[str],
          mode: str = "relu", slope: float = 0.0) -> Probe:
    """Run ``model`` patched with ``mode``/``slope`` (see :func:`proxygrad.patched`) on ``images`` (B, C, H, W)
    with integer ``labels`` (B,) and measure the gradients at ``positions`` (module names) and the BatchNorm
    input statistics. The model's own mode is used (train mode: BatchNorm with batch statistics, as in the
    paper's Section 7). Probed outputs are passed on as copies, so in-place operations after them (e.g.
    ``out += identity`` in a ResNet block) do not matter. Raises ValueError for unknown positions.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    targets = _modules(model, list(positions))
    captured: dict[str, torch.Tensor] = {}
    bn_std: dict[str, float] = {}
    hooks = []

    def keep(name):
        def hook(module, args, output):
            captured[name] = output
            return output.clone()  # the network goes on with a copy: later in-place ops cannot touch ``output``
        return hook

    def measure(name):
        def hook(module, args):
            bn_std[name] = _channel_std(args[0])
        return hook

    try:
        for name, module in targets.items():
            hooks.append(module.register_forward_hook(keep(name)))
        for name in batchnorm_names(model):
            hooks.append(model.get_submodule(name).register_forward_pre_hook(measure(name)))
        with patched(model, mode=mode, slope=slope if mode != "relu" else 0.0):
            loss = F.cross_entropy(model(images), labels)
            grads = torch.autograd.grad(loss, [captured[n] for n in targets])
    finally:
        for hook in hooks:
            hook.remove()
    return Probe(gradients={n: g.abs().mean().item() for n, g in zip(targets, grads)}, bn_input_std=bn_std,
                 loss=loss.item())
