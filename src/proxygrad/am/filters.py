"""Smoothing kernels for regularized activation maximization (Baust et al., seed 004).

Two families of odd-sized, normalized k x k kernels:

- Gaussian ``G_sigma``: the continuous Gaussian sampled at integer offsets, normalized to sum 1.
- Sobolev ``S_gamma = (Id - gamma * Laplacian)^-1 delta`` with the 5-point Laplacian: computed by FFT
  (numpy) on a large periodic grid (symbol ``1 / (1 + gamma * (4 - 2 cos wx - 2 cos wy))``), centred, cropped.

Parameters fitted by Baust et al.'s rule: the largest sigma / gamma such that every entry of the
*uncropped* kernel larger than ``tol`` (1e-4) lies inside the k x k window. "Uncropped" means the
kernel on a grid large enough to hold all its mass, normalized there (Gaussian: sampled and divided by
its sum over that grid; Sobolev: the periodic solution, which sums to 1 by construction). This reproduces
the spec table exactly to its printed precision.

Kernels are built once in float64 on the CPU; ``Filter`` caches a copy per (device, dtype).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

PADDINGS = ("reflect", "replicate", "circular")
KINDS = ("gaussian", "sobolev")


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be an odd integer >= 1, got {size!r}")
    return size


def _check_positive(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def _crop(kernel: torch.Tensor, size: int) -> torch.Tensor:
    """The centred ``size x size`` window (a view) of an (n, n) kernel whose centre is at (n // 2, n // 2)."""
    c, h = kernel.shape[-1] // 2, size // 2
    return kernel[c - h:c + h + 1, c - h:c + h + 1]


# ---------------------------------------------------------------------------------------------- Gaussian

def _gaussian_full(sigma: float, size: int) -> torch.Tensor:
    """Uncropped float64 Gaussian on a (2r+1)^2 grid holding all its mass (r >= size//2 + 1, r >= 10 sigma)."""
    r = max(size // 2 + 1, math.ceil(10 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    k = torch.outer(g, g)
    return k / k.sum()


def gaussian_kernel(size: int, sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Sampled Gaussian, shape (size, size), std ``sigma`` in pixels, normalized to sum 1 over the window."""
    _check_size(size)
    sigma = _check_positive(sigma, "sigma")
    k = _crop(_gaussian_full(sigma, size), size)
    return (k / k.sum()).to(dtype)


# ---------------------------------------------------------------------------------------------- Sobolev

def _sobolev_grid(size: int, gamma: float) -> int:
    """Power-of-two periodic grid size: the kernel decays like exp(-r / sqrt(gamma)), so wrap-around is < ~1e-15."""
    need = max(2 * size + 2, 72 * math.sqrt(gamma))
    return max(64, 1 << math.ceil(math.log2(need)))


def sobolev_periodic_kernel(n: int, gamma: float) -> torch.Tensor:
    """(Id - gamma * Lap)^-1 delta on an n x n periodic grid (float64), centred at (n // 2, n // 2); sums to 1.

    Odd n is symmetric about the centre; even n has one extra (wrapped) row and column at index 0.
    """
    gamma = _check_positive(gamma, "gamma")
    # numpy's FFT: a host-side constant, and torch's CPU FFT has a large per-call cost when threads are busy.
    w = 2 * np.pi * np.fft.fftfreq(n)
    minus_lap = 4 - 2 * np.cos(w)[:, None] - 2 * np.cos(w)[None, :]  # symbol of the 5-point -Laplacian
    k = np.fft.fftshift(np.fft.ifft2(1 / (1 + gamma * minus_lap)).real)  # moves (0, 0) to (n//2, n//2)
    return torch.from_numpy(k)


def sobolev_kernel(size: int, gamma: float, dtype: torch.dtype = torch.float32, *,
                   normalize: bool = True) -> torch.Tensor:
    """Sobolev kernel S_gamma cropped to (size, size); ``gamma`` in pixels^2.

    ``normalize=False`` returns the cropped window of the periodic solution as is (sums to a bit below 1).
    """
    _check_size(size)
    gamma = _check_positive(gamma, "gamma")
    k = _crop(sobolev_periodic_kernel(_sobolev_grid(size, gamma), gamma), size)
    return (k / k.sum() if normalize else k).to(dtype)


# ---------------------------------------------------------------------------------------------- fitting

def _fits(full: torch.Tensor, size: int, tol: float) -> bool:
    """True when no entry of ``full`` outside its centred size x size window exceeds ``tol``."""
    outside = full.clone()
    _crop(outside, size).zero_()
    return bool((outside <= tol).all())


def _largest(fits) -> float:
    """Largest p > 0 with fits(p), by bracketing then bisection to ~1e-10 relative (fits is monotone)."""
    lo, hi = 0.0, 1.0
    while fits(hi):
        lo, hi = hi, 2 * hi
        if hi > 1e6:
            raise ValueError("no finite parameter bound: is tol > 0?")
    while hi - lo > 1e-10 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


@lru_cache(maxsize=None)
def fit_gaussian_sigma(size: int, tol: float = 1e-4) -> float:
    """Largest sigma (pixels) such that every uncropped-Gaussian entry > tol lies in the size x size window."""
    _check_size(size)
    _check_positive(tol, "tol")
    return _largest(lambda s: _fits(_gaussian_full(s, size), size, tol))


@lru_cache(maxsize=None)
def fit_sobolev_gamma(size: int, tol: float = 1e-4) -> float:
    """Largest gamma (pixels^2) such that every uncropped-Sobolev entry > tol lies in the size x size window."""
    _check_size(size)
    _check_positive(tol, "tol")
    return _largest(lambda g: _fits(sobolev_periodic_kernel(_sobolev_grid(size, g), g), size, tol))


# ---------------------------------------------------------------------------------------------- filtering

def filter2d(x: torch.Tensor, kernel: torch.Tensor, padding: str = "reflect") -> torch.Tensor:
    """Per-channel 2-D convolution of x (B, C, H, W) with kernel (k, k), k odd; same shape, device, dtype as x.

    A true convolution (kernel flipped), 'same' size. ``padding`` (default ``"reflect"``) is torch's
    ``F.pad`` mode: ``"reflect"`` mirrors without repeating the edge (d c b | a b c d), like scipy.ndimage's
    ``mode="mirror"``; ``"replicate"`` is scipy's ``"nearest"``; ``"circular"`` is scipy's ``"wrap"``.
    Reflect padding needs k // 2 < H and W.
    """
    if x.dim() != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
    if kernel.dim() != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"kernel must have shape (k, k) with k odd, got {tuple(kernel.shape)}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    c, p = x.shape[1], kernel.shape[0] // 2
    if padding == "reflect" and p >= min(x.shape[-2:]):
        raise ValueError(f"reflect padding of a {kernel.shape[0]}x{kernel.shape[0]} kernel needs images larger than "
                         f"{p} pixels, got {tuple(x.shape[-2:])}; use a smaller kernel or another padding")
    weight = kernel.to(device=x.device, dtype=x.dtype).flip(0, 1).expand(c, 1, -1, -1)
    if p:
        x = F.pad(x, (p, p, p, p), mode=padding)
    return F.conv2d(x, weight, groups=c)


@dataclass(frozen=True)
class Filter:
    """A Gaussian or Sobolev smoothing filter, callable on images (B, C, H, W).

    ``param`` is sigma (pixels) for "gaussian" or gamma (pixels^2) for "sobolev"; None fits it by the
    1e-4 rule (``fit_gaussian_sigma`` / ``fit_sobolev_gamma``). ``str(f)`` is ``"kind:size"`` or
    ``"kind:size:param"``, the form ``Scheme.parse`` reads.
    """

    kind: str
    size: int
    param: float | None = None
    padding: str = "reflect"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"filter kind must be one of {KINDS}, got {self.kind!r}")
        _check_size(self.size)
        if self.param is not None:
            name = "sigma" if self.kind == "gaussian" else "gamma"
            object.__setattr__(self, "param", _check_positive(self.param, name))
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {self.padding!r}")

    @classmethod
    def gaussian(cls, size: int, sigma: float | None = None, padding: str = "reflect") -> "Filter":
        """Gaussian filter of size x size; sigma in pixels, None -> fit_gaussian_sigma(size)."""
        return cls("gaussian", size, sigma, padding)

    @classmethod
    def sobolev(cls, size: int, gamma: float | None = None, padding: str = "reflect") -> "Filter":
        """Sobolev filter of size x size; gamma in pixels^2, None -> fit_sobolev_gamma(size)."""
        return cls("sobolev", size, gamma, padding)

    @property
    def value(self) -> float:
        """The parameter in use (sigma or gamma), fitted when ``param`` is None."""
        if self.param is not None:
            return self.param
        return fit_gaussian_sigma(self.size) if self.kind == "gaussian" else fit_sobolev_gamma(self.size)

    def kernel(self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The (size, size) kernel on ``device`` in ``dtype``, built once per (device, dtype)."""
        key = (torch.device(device) if device is not None else torch.device("cpu"), dtype)
        if key not in self._cache:
            make = gaussian_kernel if self.kind == "gaussian" else sobolev_kernel
            self._cache[key] = make(self.size, self.value, dtype=torch.float64).to(device=key[0], dtype=dtype)
        return self._cache[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Filtered x (B, C, H, W), same shape, device and dtype."""
        return filter2d(x, self.kernel(x.device, x.dtype), self.padding)

    def __str__(self) -> str:
        return f"{self.kind}:{self.size}" + ("" if self.param is None else f":{self.param!r}")
