"""The views the network sees: :class:`RandomCropFlip` (training) and :class:`CenterCrop` (test) crop a
split's [0, 1] images and normalize them per channel."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .sampling import sample_rng


def _normalize(image: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    m = torch.tensor(mean, dtype=image.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(-1, 1, 1)
    return (image - m) / s


def crop(image: Tensor, top: int, left: int, size: int) -> Tensor:
    """The ``size`` x ``size`` window of (C, H, W) ``image`` at (top, left); outside the image is 0."""
    _, h, w = image.shape
    pad = (max(0, -left), max(0, left + size - w), max(0, -top), max(0, top + size - h))
    if any(pad):
        image = F.pad(image, pad)
        top, left = top + pad[2], left + pad[0]
    return image[:, top:top + size, left:left + size]


class RandomCropFlip(Dataset):
    """Training view: keys ``(index, epoch)`` -> (normalized image (3, size, size), label).

    The image is padded by ``padding`` zeros, cropped at a uniformly random position (both ranges inclusive),
    flipped horizontally with probability 0.5 when ``flip``, then normalized by ``mean``/``std`` (per channel,
    [0, 1] pixel units). The random numbers come from :func:`sample_rng` (seed, epoch, index).
    """

    def __init__(self, base: Dataset, size: int, mean: Sequence[float], std: Sequence[float], *, padding: int = 0,
                 flip: bool = True, seed: int = 0):
        self.base, self.size, self.mean, self.std = base, size, tuple(mean), tuple(std)
        self.padding, self.flip, self.seed = padding, flip, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, int]:
        index, epoch = key
        image, label = self.base[index]
        rng = sample_rng(self.seed, epoch, index)
        _, h, w = image.shape
        p = self.padding
        top = int(rng.integers(0, max(h + 2 * p - self.size, 0) + 1)) - p
        left = int(rng.integers(0, max(w + 2 * p - self.size, 0) + 1)) - p
        image = crop(image, top, left, self.size)
        if self.flip and rng.random() < 0.5:
            image = image.flip(-1)
        return _normalize(image, self.mean, self.std), label


class CenterCrop(Dataset):
    """Test view: index -> (normalized central ``size`` x ``size`` crop (3, size, size), label)."""

    def __init__(self, base: Dataset, size: int, mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0)):
        self.base, self.size, self.mean, self.std = base, size, tuple(mean), tuple(std)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = self.base[index]
        _, h, w = image.shape
        image = crop(image, (h - self.size) // 2, (w - self.size) // 2, self.size)
        return _normalize(image, self.mean, self.std), label
