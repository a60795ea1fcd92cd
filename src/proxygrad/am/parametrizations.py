"""What the optimizer changes: the pixels themselves, or a spectrum the image is made from.

A parametrization turns a parameter tensor p (B, ...) into images x = image(p, (H, W)) (B, C, H, W) in [-1, 1];
the render loop ascends the objective in p. Each image's starting parameter comes from its own seed, so
batching never changes an image.

- ``pixel`` (the paper's): p is the image itself, kept in [-1, 1] by clamping after each step.
- ``fourier`` (Lucid/Lucent): p is the image's real 2-D spectrum (C, H, W//2+1, 2) (real, imaginary),
  scaled by 1 / frequency; image = sigmoid(recorrelate(irfft2(scale * p, ortho) / 4)), mapped to [-1, 1].
- ``maco`` (Fel et al., NeurIPS 2023): p is only the phase (C, H, W//2+1); the magnitude is a fixed average
  spectrum of natural images (:mod:`.spectrum`). image = sigmoid(recorrelate(standardize(irfft2(magnitude *
  exp(i * standardize(p)))))), mapped to [-1, 1]. Horama maps the sigmoid to (-2.5, 2.5) in the model's
  normalized space, which leaves the range of valid pixels; we keep images valid ([-1, 1]) like the others.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..models.spec import InputSpec
from .colour import recorrelate
from .init import initial_images

PARAMETRIZATIONS = ("pixel", "fourier", "maco")


def _normal(shape: tuple[int, ...], seeds: Sequence[int], std: float, device, dtype) -> Tensor:
    """(B, *shape) Gaussian noise of std ``std``, row b from a generator seeded by ``seeds[b]``."""
    rows = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float64) for s in seeds]
    return (std * torch.stack(rows)).to(device=device, dtype=dtype)


def _to_range(logits: Tensor) -> Tensor:
    """sigmoid to [0, 1], then to the images' [-1, 1] (= 2 sigmoid - 1 = tanh(logits / 2))."""
    return torch.tanh(logits / 2)


def _standardize(x: Tensor) -> Tensor:
    """Zero mean, unit std per image over all but the batch dimension."""
    flat = x.flatten(1)
    mean, std = flat.mean(1), flat.std(1)
    shape = (-1, *([1] * (x.dim() - 1)))
    return (x - mean.view(shape)) / (std.view(shape) + 1e-8)


def frequencies(height: int, width: int) -> Tensor:
    """sqrt(fx^2 + fy^2) of the real 2-D FFT of an (H, W) image, shape (H, W//2+1), cycles per pixel."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    return (fx * fx + fy * fy).sqrt()


@functools.lru_cache(maxsize=32)
def _fourier_scale(height: int, width: int, decay_power: float, device: str) -> Tensor:
    floor = 1.0 / max(height, width)
    return (1.0 / frequencies(height, width).clamp_min(floor) ** decay_power).float().to(device)


@dataclass(frozen=True)
class Pixel:
    """The image is the parameter (the paper's); steps act on pixels, so after-step transforms, schemes,
    octaves and clamping apply."""

    name: str = "pixel"
    pixel_space: bool = True

    def init(self, spec: InputSpec, seeds: Sequence[int], size: tuple[int, int], sigma: float, device,
             start: Tensor | None = None) -> Tensor:
        """(B, C, H, W): gray (or ``start``) plus noise of std ``sigma`` per seed; ``size`` must be the spec's."""
        return initial_images(spec.replace(size=size), seeds, sigma, device, start=start)

    def image(self, p: Tensor, size: tuple[int, int]) -> Tensor:
        return p

    def describe(self) -> dict:
        return {"name": self.name}


@dataclass(frozen=True)
class Fourier:
    """Lucid's decorrelated Fourier image: ``sd`` is the std of the initial spectrum (Lucid: 0.01),
    ``decay_power`` the exponent of 1 / frequency, ``magic`` Lucid's divisor that reduces saturation."""

    sd: float = 0.01
    decay_power: float = 1.0
    magic: float = 4.0
    name: str = "fourier"
    pixel_space: bool = False

    def __post_init__(self):
        for label, value in (("sd", self.sd), ("magic", self.magic)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"fourier {label} must be a finite number > 0, got {value}")
        if not (math.isfinite(self.decay_power) and self.decay_power >= 0):
            raise ValueError(f"fourier decay_power must be finite and >= 0, got {self.decay_power}")

    def init(self, spec: InputSpec, seeds: Sequence[int], size: tuple[int, int], sigma: float, device,
             start: Tensor | None = None) -> Tensor:
        """(B, C, H, W//2+1, 2) Gaussian spectra of std ``self.sd`` (``sigma`` is the pixel noise: unused)."""
        if start is not None:
            raise ValueError("a start image needs parametrization 'pixel'")
        height, width = size
        return _normal((spec.channels, height, width // 2 + 1, 2), seeds, self.sd, device, torch.float32)

    def scale(self, height: int, width: int, device) -> Tensor:
        """(H, W//2+1): 1 / max(f, 1 / max(H, W)) ** decay_power (cached per size and device)."""
        return _fourier_scale(height, width, self.decay_power, str(torch.device(device)))

    def image(self, p: Tensor, size: tuple[int, int]) -> Tensor:
        height, width = size
        spectrum = torch.view_as_complex(p.contiguous()) * self.scale(height, width, p.device)
        pixels = torch.fft.irfft2(spectrum, s=(height, width), norm="ortho") / self.magic
        return _to_range(recorrelate(pixels))

    def describe(self) -> dict:
        return {"name": self.name, "sd": self.sd, "decay_power": self.decay_power, "magic": self.magic}


@dataclass(frozen=True)
class Maco:
    """Phase-only parametrization over a fixed magnitude (MACO). ``spectrum``: a shipped name ("digits",
    "natural") or a file written by ``proxygrad spectrum``; None picks the shipped one with the model's
    number of channels."""

    spectrum: str | None = None
    name: str = "maco"
    pixel_space: bool = False
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def load(self, channels: int):
        """The :class:`~.spectrum.Spectrum` this parametrization uses for ``channels`` channels."""
        from .spectrum import bundled_spectrum, load_spectrum

        key = ("spectrum", channels)
        if key not in self._cache:
            found = bundled_spectrum(channels) if self.spectrum is None else load_spectrum(self.spectrum)
            if found.magnitude.shape[0] != channels:
                raise ValueError(f"spectrum {self.spectrum or 'bundled'!r} has {found.magnitude.shape[0]} channels, "
                                 f"the model takes {channels}")
            self._cache[key] = found
        return self._cache[key]

    def magnitude(self, channels: int, size: tuple[int, int], device) -> Tensor:
        """(C, H, W//2+1) magnitude resized to ``size`` (cached per size and device)."""
        from .spectrum import magnitude_for

        key = ("magnitude", channels, tuple(size), str(device))
        if key not in self._cache:
            self._cache[key] = magnitude_for(self.load(channels), size, channels).float().to(device)
        return self._cache[key]

    def init(self, spec: InputSpec, seeds: Sequence[int], size: tuple[int, int], sigma: float, device,
             start: Tensor | None = None) -> Tensor:
        """(B, C, H, W//2+1) phases, standard normal per seed; loads (and checks) the magnitude first."""
        if start is not None:
            raise ValueError("a start image needs parametrization 'pixel'")
        self.magnitude(spec.channels, size, device)
        return _normal((spec.channels, size[0], size[1] // 2 + 1), seeds, 1.0, device, torch.float32)

    def image(self, p: Tensor, size: tuple[int, int]) -> Tensor:
        height, width = size
        magnitude = self.magnitude(p.shape[1], (height, width), p.device)
        spectrum = torch.polar(magnitude.expand_as(p), _standardize(p))
        pixels = torch.fft.irfft2(spectrum, s=(height, width), norm="ortho")
        return _to_range(recorrelate(_standardize(pixels)))

    def describe(self) -> dict:
        source = self._cache.get(("spectrum", 1)) or self._cache.get(("spectrum", 3))
        return {"name": self.name, "spectrum": self.spectrum or "bundled",
                "spectrum_source": dict(source.source) if source is not None else None}


def parametrization(name: str, **options):
    """The parametrization called ``name`` (one of PARAMETRIZATIONS) with its options; ValueError otherwise."""
    kinds = {"pixel": Pixel, "fourier": Fourier, "maco": Maco}
    if name not in kinds:
        raise ValueError(f"unknown parametrization {name!r}; valid: {', '.join(PARAMETRIZATIONS)}")
    try:
        return kinds[name](**options)
    except TypeError as error:
        raise ValueError(f"bad options for parametrization {name!r}: {error}") from None
