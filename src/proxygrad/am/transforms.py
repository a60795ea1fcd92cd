"""Random image transforms for transformation robustness, reproducible under batching.

A transform never draws random numbers. It declares ``n_random`` and maps images x (B, C, H, W) and
uniforms u (B, n_random) in [0, 1) to transformed images of the same shape, device and dtype:
``t.apply(x, u)``. ``apply`` is pure and differentiable with respect to x, and row b of the output
depends only on x[b] and u[b], so drawing u per image from that image's own generator (``draw_u``)
makes each image's result independent of what else is in the batch.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .filters import Filter

GRID_PADDINGS = ("reflection", "border", "zeros")


def draw_u(n_random: int, generators: Sequence[torch.Generator], device: torch.device | str | None = None,
           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Uniforms (B, n_random) in [0, 1), row b drawn from ``generators[b]`` (on that generator's device)."""
    rows = [torch.rand(n_random, generator=g, device=g.device, dtype=dtype) for g in generators]
    return torch.stack(rows).to(device) if rows else torch.empty(0, n_random, device=device, dtype=dtype)


class Transform:
    """Base class: subclasses set ``n_random`` and implement ``_apply(x, u)`` with u already checked."""

    n_random: int = 0

    def apply(self, x: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """Transformed x (B, C, H, W); u (B, n_random) in [0, 1), may be None when n_random == 0."""
        if x.dim() != 4:
            raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
        if u is None and self.n_random == 0:
            u = x.new_empty(x.shape[0], 0)
        if u is None or tuple(u.shape) != (x.shape[0], self.n_random):
            got = None if u is None else tuple(u.shape)
            raise ValueError(f"{self!r} needs u of shape (B, n_random) = ({x.shape[0]}, {self.n_random}), got {got}")
        return self._apply(x, u.to(x.device))

    __call__ = apply

    def _apply(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _affine(x: torch.Tensor, theta: torch.Tensor, padding: str) -> torch.Tensor:
    """Bilinear resampling out(p) = x(theta p) per image, theta (B, 2, 3) in normalized coordinates."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def _check_padding(padding: str) -> str:
    if padding not in GRID_PADDINGS:
        raise ValueError(f"padding must be one of {GRID_PADDINGS}, got {padding!r}")
    return padding


class Jitter(Transform):
    """Random integer translation by (dy, dx), each uniform in [-pixels, pixels]; u columns: (dy, dx).

    out[..., i, j] = x[..., i - dy, j - dx] (``torch.roll`` convention). Pixels shifted in from outside
    come from ``mode="reflect"`` (default; mirror without repeating the edge, as ``F.pad``'s reflect)
    or ``mode="roll"`` (periodic wrap). Needs pixels < H and W.
    """

    n_random = 2

    def __init__(self, pixels: int, mode: str = "reflect"):
        if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 0:
            raise ValueError(f"pixels must be an integer >= 0, got {pixels!r}")
        if mode not in ("reflect", "roll"):
            raise ValueError(f"mode must be 'reflect' or 'roll', got {mode!r}")
        self.pixels, self.mode = pixels, mode

    def __repr__(self) -> str:
        return f"Jitter(pixels={self.pixels}, mode={self.mode!r})"

    def shifts(self, u: torch.Tensor) -> torch.Tensor:
        """Integer shifts (B, 2) = (dy, dx) in [-pixels, pixels] for u (B, 2)."""
        n = 2 * self.pixels + 1
        return (u * n).floor().clamp(0, n - 1).long() - self.pixels

    def _source(self, n: int, shift: torch.Tensor) -> torch.Tensor:
        """Source index (B, n) of each output position along an axis of length n."""
        i = torch.arange(n, device=shift.device) - shift[:, None]
        if self.mode == "roll":
            return i.remainder(n)
        return (n - 1) - ((n - 1) - i.abs()).abs()  # mirror about 0 and n - 1, valid for |shift| < n

    def _apply(self, x, u):
        if self.pixels == 0:
            return x
        b, c, h, w = x.shape
        if self.pixels >= min(h, w):
            raise ValueError(f"{self!r} needs images larger than {self.pixels} pixels, got {h} x {w}")
        s = self.shifts(u)
        iy, ix = self._source(h, s[:, 0]), self._source(w, s[:, 1])
        x = x.gather(2, iy[:, None, :, None].expand(b, c, h, w))
        return x.gather(3, ix[:, None, None, :].expand(b, c, h, w))


class Rotate(Transform):
    """Rotation about the image centre by an angle uniform in [-degrees, degrees]; u column: angle.

    angle = (2u - 1) * degrees; positive angles turn the content counter-clockwise as displayed
    (row 0 at the top), so +90 degrees equals ``torch.rot90(x, 1, dims=(2, 3))`` on square images.
    Bilinear (``grid_sample``, align_corners=False) with ``padding`` "reflection" (default), "border" or
    "zeros". Aspect-ratio correct on non-square images.
    """

    n_random = 1

    def __init__(self, degrees: float, padding: str = "reflection"):
        self.degrees = float(degrees)
        if not math.isfinite(self.degrees) or self.degrees < 0:
            raise ValueError(f"degrees must be a finite number >= 0, got {degrees!r}")
        self.padding = _check_padding(padding)

    def __repr__(self) -> str:
        return f"Rotate(degrees={self.degrees:g}, padding={self.padding!r})"

    def angles(self, u: torch.Tensor) -> torch.Tensor:
        """Angles (B,) in radians for u (B, 1)."""
        return torch.deg2rad((2 * u[:, 0] - 1) * self.degrees)

    def _apply(self, x, u):
        if self.degrees == 0:
            return x
        h, w = x.shape[-2:]
        a = self.angles(u.to(x.dtype))
        cos, sin, zero = a.cos(), a.sin(), torch.zeros_like(a)
        # Pixel-space rotation written in normalized coordinates (x spans W, y spans H).
        theta = torch.stack([torch.stack([cos, -sin * (h / w), zero], 1),
                             torch.stack([sin * (w / h), cos, zero], 1)], 1)
        return _affine(x, theta, self.padding)


class Scale(Transform):
    """Zoom about the image centre by a factor uniform in [low, high]; u column: factor. Same output size.

    factor > 1 magnifies (crops the border), factor < 1 shrinks (fills with ``padding``, default
    "reflection"). Bilinear ``grid_sample``, align_corners=False.
    """

    n_random = 1

    def __init__(self, low: float, high: float, padding: str = "reflection"):
        self.low, self.high = float(low), float(high)
        if not (0 < self.low <= self.high < math.inf):
            raise ValueError(f"need 0 < low <= high < inf, got low={low!r}, high={high!r}")
        self.padding = _check_padding(padding)

    def __repr__(self) -> str:
        return f"Scale(low={self.low:g}, high={self.high:g}, padding={self.padding!r})"

    def factors(self, u: torch.Tensor) -> torch.Tensor:
        """Zoom factors (B,) for u (B, 1)."""
        return self.low + (self.high - self.low) * u[:, 0]

    def _apply(self, x, u):
        if self.low == self.high == 1:
            return x
        inv = 1 / self.factors(u.to(x.dtype))
        zero = torch.zeros_like(inv)
        theta = torch.stack([torch.stack([inv, zero, zero], 1), torch.stack([zero, inv, zero], 1)], 1)
        return _affine(x, theta, self.padding)


class Blur(Transform):
    """Deterministic Gaussian blur (n_random = 0): std ``sigma`` pixels, odd ``size`` (None: 2*ceil(3 sigma)+1),
    reflect padding (see ``filters.filter2d``)."""

    n_random = 0

    def __init__(self, sigma: float, size: int | None = None):
        self.sigma = float(sigma)
        self.size = 2 * math.ceil(3 * self.sigma) + 1 if size is None else size
        self.filter = Filter.gaussian(self.size, self.sigma)

    def __repr__(self) -> str:
        return f"Blur(sigma={self.sigma:g}, size={self.size})"

    def _apply(self, x, u):
        return self.filter(x)


class Compose(Transform):
    """Transforms applied in order; n_random is their sum and u's columns are handed out in order."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"Compose takes Transform objects, got {t!r}")
        self.n_random = sum(t.n_random for t in self.transforms)

    def __repr__(self) -> str:
        return f"Compose([{', '.join(map(repr, self.transforms))}])"

    def _apply(self, x, u):
        start = 0
        for t in self.transforms:
            x = t.apply(x, u[:, start:start + t.n_random])
            start += t.n_random
        return x
