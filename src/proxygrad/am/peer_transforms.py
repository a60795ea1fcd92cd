"""The random input transforms of the field's recipes, in this project's per-image form (see transforms.py).

- :class:`LucentStandard`: Lucent's ``standard_transforms`` (pad 12 px of gray; jitter 0..7 px; scale chosen
  from 1 + (i - 5) / 50, i = 0..10; rotation chosen from the integers -10..10 degrees plus five extra 0s;
  jitter 0..3 px; then resized to a fixed size), as ONE bilinear resampling per image. Lucent draws one set of
  parameters per step for the whole batch and resamples five times; we draw per image (batch-independent) and
  resample once, with the same geometry (align_corners=True, as its upsampling) and fills (gray padding, black
  where translation and rotation uncover the canvas, as kornia's zero padding in [0, 1]).
- :class:`MacoCrops`: MACO's views: ``crops`` random square crops per image (centres N(0.5, 0.15) of the
  side, sides uniform in [0.20, 0.25] of it), each resized to ``size`` with ``torchvision.ops.roi_align``,
  plus Gaussian (std ``noise``) and uniform (width ``noise``) pixel noise. It returns B * crops views
  (image b's crops are rows b * crops ... (b + 1) * crops - 1); the render loop averages their scores.
  The noise comes from a counter-based hash of a per-image key, so it needs no generator inside the loop.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

from .transforms import Transform

LUCENT_PAD = 12
LUCENT_SCALES = tuple(1 + (i - 5) / 50 for i in range(11))
LUCENT_ANGLES = tuple(range(-10, 11)) + (0,) * 5


def _choice(u: torch.Tensor, options: tuple[float, ...]) -> torch.Tensor:
    """options[floor(u * len(options))] for u (B,) in [0, 1)."""
    index = (u * len(options)).floor().clamp(0, len(options) - 1).long()
    return torch.tensor(options, dtype=u.dtype, device=u.device)[index]


def _integer(u: torch.Tensor, n: int) -> torch.Tensor:
    """Integers uniform in 0..n-1 for u (B,) in [0, 1), as floats."""
    return (u * n).floor().clamp(0, n - 1)


class LucentStandard(Transform):
    """Lucent's standard transforms; u columns: jitter-8 (x, y), scale, angle, jitter-4 (x, y). Output
    (B, C, size) (``size`` None: the input's size). Images in [-1, 1]: gray padding is 0, black is -1."""

    n_random = 6

    def __init__(self, size: tuple[int, int] | None = None, pad: int = LUCENT_PAD):
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise ValueError(f"size must be (H, W) with H, W >= 1, got {size!r}")
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        self.size, self.pad = (tuple(int(s) for s in size) if size is not None else None), int(pad)

    def __repr__(self) -> str:
        return f"LucentStandard(size={self.size}, pad={self.pad})"

    def _apply(self, x, u):
        b, c, h, w = x.shape
        out_h, out_w = self.size or (h, w)
        canvas = F.pad(x, [self.pad] * 4, value=0.0)            # gray in [-1, 1]
        ch, cw = canvas.shape[-2:]
        u = u.to(x.dtype)
        t1x, t1y = _integer(u[:, 0], 8), _integer(u[:, 1], 8)
        scale = _choice(u[:, 2], LUCENT_SCALES)
        angle = torch.deg2rad(_choice(u[:, 3], LUCENT_ANGLES))
        t2x, t2y = _integer(u[:, 4], 4), _integer(u[:, 5], 4)
        # Sizes after the scale step (upsample to ceil(s * n), then pad back up when smaller).
        sh, sw = torch.ceil(scale * ch), torch.ceil(scale * cw)
        ph, pw = torch.ceil((ch - sh) / 2).clamp_min(0), torch.ceil((cw - sw) / 2).clamp_min(0)
        h2, w2 = sh + 2 * ph, sw + 2 * pw
        # Output pixel -> pixel before the final resize -> undo jitter 4 -> undo rotation -> undo scale -> undo
        # jitter 8 -> canvas pixel (all align_corners=True pixel coordinates).
        ry = torch.arange(out_h, dtype=x.dtype, device=x.device).view(1, -1, 1)
        rx = torch.arange(out_w, dtype=x.dtype, device=x.device).view(1, 1, -1)
        view = lambda v: v.view(-1, 1, 1)
        qy = ry * view((h2 - 1) / max(out_h - 1, 1)) - view(t2y)
        qx = rx * view((w2 - 1) / max(out_w - 1, 1)) - view(t2x)
        cy, cx = view((h2 - 1) / 2), view((w2 - 1) / 2)
        cos, sin = view(angle.cos()), view(angle.sin())
        rx2 = cos * (qx - cx) - sin * (qy - cy) + cx
        ry2 = sin * (qx - cx) + cos * (qy - cy) + cy
        py = (ry2 - view(ph)) * (ch - 1) / view(sh - 1) - view(t1y)
        px = (rx2 - view(pw)) * (cw - 1) / view(sw - 1) - view(t1x)
        grid = torch.stack([2 * px / (cw - 1) - 1, 2 * py / (ch - 1) - 1], -1)
        # Zero padding of grid_sample on (x + 1) is black (-1) in [-1, 1].
        return F.grid_sample(canvas + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=True) - 1


def hashed_uniform(keys: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniforms (B, *shape) in [0, 1) from integer keys (B,) (< 2^31): a counter-based hash of (key, index),
    so row b depends only on keys[b] and needs no random generator."""
    n = math.prod(shape)
    index = torch.arange(n, device=keys.device, dtype=torch.int64)
    mask = 0xFFFFFFFF
    v = (keys.view(-1, 1).long() * 0x27D4EB2F + index * 0x165667B1 + 0x9E3779B1) & mask
    for multiplier in (0x7FEB352D, 0x5BD1E995):
        v = v ^ (v >> 16)
        v = (v * multiplier) & mask
    v = v ^ (v >> 15)
    return ((v >> 8).to(torch.float64) / 2**24).view(-1, *shape)


class MacoCrops(Transform):
    """MACO's crops; u columns per crop (centre y, centre x, side), then one noise key. Output
    (B * crops, C, *size) (``size`` None: the input's size)."""

    def __init__(self, size: tuple[int, int] | None = None, crops: int = 6, side: tuple[float, float] = (0.20, 0.25),
                 centre_std: float = 0.15, noise: float = 0.05):
        if crops < 1:
            raise ValueError(f"crops must be >= 1, got {crops}")
        if not (0 < side[0] <= side[1] <= 1):
            raise ValueError(f"side must be (low, high) with 0 < low <= high <= 1, got {side!r}")
        if centre_std < 0 or noise < 0:
            raise ValueError("centre_std and noise must be >= 0")
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise ValueError(f"size must be (H, W) with H, W >= 1, got {size!r}")
        self.size = tuple(int(s) for s in size) if size is not None else None
        self.crops, self.side = int(crops), tuple(side)
        self.centre_std, self.noise = float(centre_std), float(noise)
        self.n_random = 3 * self.crops + 1

    @property
    def views(self) -> int:
        return self.crops

    def __repr__(self) -> str:
        return (f"MacoCrops(size={self.size}, crops={self.crops}, side={self.side}, centre_std={self.centre_std:g}, "
                f"noise={self.noise:g})")

    def boxes(self, u: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """roi_align boxes (B * crops, 5): (image index, x1, y1, x2, y2) in pixels."""
        b = u.shape[0]
        per_crop = u[:, :3 * self.crops].reshape(b, self.crops, 3).double().clamp(1e-6, 1 - 1e-6)
        centre = 0.5 + self.centre_std * torch.special.ndtri(per_crop[..., :2])          # (B, crops, 2) y, x
        side = self.side[0] + (self.side[1] - self.side[0]) * per_crop[..., 2]             # (B, crops)
        cy, cx = centre[..., 0] * height, centre[..., 1] * width
        half_h, half_w = side * height / 2, side * width / 2
        index = torch.arange(b, device=u.device, dtype=torch.float64).view(-1, 1).expand(b, self.crops)
        boxes = torch.stack([index, cx - half_w, cy - half_h, cx + half_w, cy + half_h], -1)
        return boxes.reshape(-1, 5)

    def _apply(self, x, u):
        b, c, h, w = x.shape
        size = self.size or (h, w)
        views = roi_align(x, self.boxes(u, h, w).to(x.dtype), output_size=size, spatial_scale=1.0,
                          sampling_ratio=2, aligned=True)
        if self.noise == 0:
            return views
        keys = (u[:, -1].double() * 2**31).long().clamp(0, 2**31 - 1)
        shape = (self.crops, c, *size)
        gauss_u = hashed_uniform(keys, (2, *shape)).clamp_min(1e-12)
        gauss = torch.sqrt(-2 * gauss_u[:, 0].log()) * torch.cos(2 * math.pi * gauss_u[:, 1])
        flat = hashed_uniform(keys + 7919, shape) - 0.5
        noise = (self.noise * (gauss + flat)).to(x.dtype).reshape(b * self.crops, c, *size)
        return views + noise
