"""Feature inversion (seed 004, eq. 3): find an image u whose features at one layer match a target image's.

    D(Phi(u), Phi0) = ||Phi(u) - Phi0||_p^p / Z,     Phi0 = Phi(u0),  p in {1, 2}

``Phi`` is a layer's output (a module name of the model, ``"output"`` for the model's output, or ``"input"``
for the image itself). ``Z`` is ``||Phi0||_p^p`` (``normalize="target"``: D = 0 at Phi(u) = Phi0 and D = 1 at
Phi(u) = 0; 1 for an image whose features are all 0) or 1 (``normalize="none"``). Note that Phi(u) = 0 is not
the gray image u = 0: biases and BatchNorm make Phi(0) != 0, so D starts above or below 1.

The descent on D is the activation-maximization loop itself, :func:`proxygrad.am.render`, maximizing -D:
the same update schemes (fluid / elastic / fluid-elastic with Gaussian or Sobolev kernels), total variation,
step rules, batching and, optionally, ProxyGrad in the backward pass. Every reported distance comes from the
ORIGINAL network (ProxyGrad leaves the forward pass, and so Phi, unchanged).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..models.spec import InputSpec
from .config import Regularization, RenderConfig
from .init import load_image
from .objectives import Objective, check_layers, run_and_capture
from .render import RenderResult, render
from .runtime import deterministic_cpu
from .schemes import Scheme

NORMALIZATIONS = ("target", "none")
METHODS = ("relu", "proxygrad")  # "leaky" changes the forward pass, so Phi(u) would not be the target's layer
TV = "tv"


# ---- the data term -------------------------------------------------------------------------------------------
def feature_distance(phi: Tensor, phi0: Tensor, p: int = 2, z: Tensor | float = 1.0) -> Tensor:
    """D (B,) = sum over all features of |phi - phi0|^p, divided by ``z`` (a number or one per image, (B,)).

    ``phi``: (B, ...) features; ``phi0``: the targets, (B, ...) or (1, ...) for one target.
    """
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r}")
    diff = (phi - phi0).flatten(1)
    return (diff.abs() if p == 1 else diff.square()).sum(1) / z


def normalizer(phi0: Tensor, p: int = 2, normalize: str = "target") -> Tensor:
    """Z (B,) for targets ``phi0`` (B, ...): ``||phi0||_p^p`` ("target"; 1 where that is 0) or 1 ("none")."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    ones = torch.ones(phi0.shape[0], dtype=phi0.dtype, device=phi0.device)
    if normalize == "none":
        return ones
    z = feature_distance(phi0, torch.zeros_like(phi0), p)
    return torch.where(z > 0, z, ones)


class FeatureDistance(Objective):
    """-D(Phi(u), Phi0) for ONE target ``phi0`` (1, ...) at ``layer``: an objective for :func:`render`."""

    def __init__(self, layer: str, phi0: Tensor, p: int = 2, z: float = 1.0):
        self.layer, self.phi0, self.p, self.z = layer, phi0, p, float(z)
        self.layers = frozenset({layer})
        self.name = f"-D({layer}, p={p})"

    def score(self, capture) -> Tensor:
        return -feature_distance(capture[self.layer], self.phi0, self.p, self.z)


def check_layer(model: nn.Module, layer: str) -> None:
    """ValueError naming the closest module names unless ``layer`` is one of ``model``'s, "input" or "output"."""
    check_layers(model, [FeatureDistance(layer, torch.zeros(1))])


def target_features(model: nn.Module, spec: InputSpec, images: Tensor, layer: str) -> Tensor:
    """Phi0 = the ORIGINAL network's ``layer`` output (N, ...) for ``images`` (N, C, H, W) in [-1, 1]; on the
    CPU with oneDNN off, as in the render loop, so that each image's target does not depend on the batch."""
    check_layer(model, layer)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), deterministic_cpu(images.device.type == "cpu"):
            return run_and_capture(model, images, spec.to_model_input(images), frozenset({layer}))[layer].detach()
    finally:
        model.train(was_training)


# ---- the loop ------------------------------------------------------------------------------------------------
@dataclass
class Inversion:
    """Reconstructions (N, C, H, W) in [-1, 1] (CPU) of ``originals`` from ``layer``, with per image: ``z``,
    the final ``distance`` D and the ``loss`` D at ``loss_steps`` (N, T), all from the ORIGINAL network, and
    its class ``predicted`` for each reconstruction. ``render`` is the underlying :class:`RenderResult`."""

    images: Tensor
    originals: Tensor
    layer: str
    p: int
    normalize: str
    z: Tensor
    distance: Tensor
    loss: Tensor
    loss_steps: list[int]
    predicted: Tensor
    render: RenderResult


def check_images(images: Tensor, spec: InputSpec) -> None:
    """ValueError unless ``images`` is (N, C, H, W) with the model's channels and size."""
    want = (spec.channels, *spec.size)
    if not isinstance(images, Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != want:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must have shape (N, {', '.join(map(str, want))}) for this model, got {shape}")


def invert(model: nn.Module, spec: InputSpec, images: Tensor, layer: str, *, p: int = 2,
           normalize: str = "target", config: RenderConfig | None = None, seeds: Sequence[int] | None = None,
           device=None) -> Inversion:
    """Reconstruct ``images`` (N, C, H, W) in [-1, 1] from the ``layer`` features of ``model`` (the ORIGINAL
    network; ``spec`` maps [-1, 1] to its input) by descending D from gray plus noise (seed i for image i,
    default 0..N-1). ``config`` sets the method ("relu" or "proxygrad"), steps, step rule, regularization...
    (:class:`RenderConfig`; its default is 200 normalized steps without regularization, ReLU)."""
    config = config or RenderConfig(method="relu", steps=200)
    if config.method not in METHODS:
        raise ValueError(f"inversion method must be one of {METHODS}, got {config.method!r}: a Leaky ReLU forward "
                         "pass would change Phi(u), so D could not reach 0 even at the original image")
    check_images(images, spec)
    seeds = list(range(len(images))) if seeds is None else list(seeds)
    if len(seeds) != len(images):
        raise ValueError(f"{len(images)} images but {len(seeds)} seeds: give one seed per image")
    device = device or next(iter(model.parameters()), torch.empty(0)).device
    originals = images.detach().to(device=device, dtype=torch.float32)
    phi0 = target_features(model, spec, originals, layer)
    z = normalizer(phi0, p, normalize)
    objectives = [FeatureDistance(layer, phi0[i:i + 1], p, z[i].item()) for i in range(len(originals))]
    result = render(model, spec, objectives, seeds, config, device=device)
    return Inversion(images=result.images, originals=originals.cpu(), layer=layer, p=p, normalize=normalize,
                     z=z.cpu(), distance=-result.activation, loss=-result.trace, loss_steps=result.trace_steps,
                     predicted=result.predicted, render=result)


# ---- regularizations by name ---------------------------------------------------------------------------------
def default_kernel_size(spec: InputSpec) -> int:
    """Seed 004's 11 x 11 filters at 224 x 224, scaled to the model's size: odd, at least 5 (5 for 32 x 32)."""
    k = round(11 * min(spec.size) / 224)
    return max(5, k + 1 - k % 2)


def default_schemes(spec: InputSpec) -> tuple[str, ...]:
    """No regularization, total variation, and seed 004's fluid, elastic and fluid-elastic Sobolev schemes."""
    k = default_kernel_size(spec)
    return ("none", TV, f"fluid:sobolev:{k}", f"elastic:sobolev:{k}", f"fluid-elastic:sobolev:{k}:sobolev:{k}")


def regularization(text: str, spec: InputSpec, tv_weight: float = 1.0) -> Regularization:
    """A :class:`Regularization` from ``"none"``, ``"tv"``, a scheme (``Scheme.parse``: ``"fluid:sobolev:5"``,
    ``"fluid-elastic:sobolev:5:gaussian:3"``, ...) or a scheme plus TV (``"fluid:sobolev:5+tv"``).

    ``tv_weight`` weighs the total variation per pixel: lambda * TV(u) / (C * H * W) is added to D, so the
    weight does not grow with the image size (TV with eps = 1e-8, ``penalties.total_variation``).
    """
    parts = [part.strip() for part in str(text).split("+")]
    tv = TV in parts
    rest = [part for part in parts if part != TV]
    if len(rest) > 1 or "" in parts:
        raise ValueError(f"cannot read regularization {text!r}: expected 'none', 'tv', a scheme such as "
                         f"'fluid:sobolev:5', or SCHEME+tv")
    if tv and not tv_weight > 0:
        raise ValueError(f"the total variation weight must be > 0, got {tv_weight}")
    scheme = Scheme.parse(rest[0]) if rest else Scheme.none()
    return Regularization(scheme=scheme, tv=tv_weight / (spec.channels * spec.size[0] * spec.size[1]) if tv else 0.0)


def inversion_config(scheme: str, spec: InputSpec, *, tv_weight: float = 1.0, **render_options) -> RenderConfig:
    """A :class:`RenderConfig` for inversion with the regularization named ``scheme`` (see
    :func:`regularization`); defaults: ReLU, 200 normalized steps, noise std 0.1 around gray."""
    options = {"method": "relu", "steps": 200} | render_options
    return RenderConfig(regularization=regularization(scheme, spec, tv_weight), **options)


# ---- target pictures -----------------------------------------------------------------------------------------
def picture_channels(path: str | Path) -> tuple[int, str]:
    """(channels, PIL mode) of the picture at ``path``; a palette picture ("P") has its palette's channels
    and mode. FileNotFoundError / ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    try:
        with Image.open(path) as picture:
            mode = picture.mode
            if mode == "P" and picture.palette is not None:
                mode = picture.palette.mode
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from None
    return Image.getmodebands(mode), mode


def read_target(path: str | Path, spec: InputSpec, convert: bool = False) -> Tensor:
    """The picture at ``path`` as (C, H, W) in [-1, 1] at the model's size (bilinear resize). Its channel count
    must be the model's unless ``convert`` (to gray or RGB with PIL; alpha is dropped)."""
    channels, mode = picture_channels(path)
    if channels != spec.channels and not convert:
        want = "gray (1 channel)" if spec.channels == 1 else f"{spec.channels}-channel"
        raise ValueError(f"image {path} has {channels} channel(s) (PIL mode {mode}) but the model takes {want} "
                         f"images; convert it first, or ask for the conversion (--convert / convert=True: "
                         f"{'L, the luminance' if spec.channels == 1 else 'RGB'}; any alpha channel is dropped)")
    return load_image(path, spec)
