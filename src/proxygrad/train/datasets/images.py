"""The splits as :class:`torch.utils.data.Dataset`: images float32 (3, H, W) in [0, 1] and int labels.

Both kinds share one interface: ``len``, ``[index] -> (image, label)``, ``subset(keep)`` (a new dataset of the
kept indices) and ``name(index)`` (what reports call a sample, e.g. its file).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from .common import Samples


def read_image(path: Path, resize: int | None) -> Tensor:
    """An image file as float32 (3, H, W) in [0, 1], its shorter side resized (bilinear, antialiased) to
    ``resize``. ValueError naming the file when it cannot be decoded, FileNotFoundError when it is gone."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if resize is not None:
                w, h = image.size
                scale = resize / min(w, h)
                image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file {path} is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read image {path} (corrupt or not an image: {err}); pass --skip-corrupt to "
                         f"skip such files") from None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255)


class ImageFiles(Dataset):
    """``(image, label)`` from files: image float32 (3, H, W) in [0, 1] (see :func:`read_image`)."""

    def __init__(self, samples: Samples, resize: int | None):
        self.samples, self.resize = samples, resize

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return read_image(self.samples.files[index], self.resize), self.samples.labels[index]

    def subset(self, keep: Sequence[int]) -> ImageFiles:
        return ImageFiles(self.samples.subset(keep), self.resize)

    def name(self, index: int) -> str:
        return str(self.samples.files[index])


class ImageTensors(Dataset):
    """``(image, label)`` from memory: ``images`` float32 (N, 3, H, W) in [0, 1], ``labels`` int64 (N,)."""

    def __init__(self, images: Tensor, labels: Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.labels[index])

    def subset(self, keep: Sequence[int]) -> ImageTensors:
        keep = torch.as_tensor(list(keep), dtype=torch.long)
        return ImageTensors(self.images[keep], self.labels[keep])

    def name(self, index: int) -> str:
        return f"image {index}"
