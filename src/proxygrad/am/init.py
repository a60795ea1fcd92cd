"""Starting images: the paper's gray image plus Gaussian noise, or a picture from a file."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ..models.spec import InputSpec


def load_image(path: str | Path, spec: InputSpec) -> Tensor:
    """The picture at ``path`` resized to the model's size: (C, H, W) in [-1, 1]; clear errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    try:
        with Image.open(path) as picture:
            picture = picture.convert("L" if spec.channels == 1 else "RGB").resize(spec.size[::-1], Image.BILINEAR)
            array = np.asarray(picture, dtype=np.float32)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from None
    if spec.channels not in (1, 3):
        raise ValueError(f"images from files need a model with 1 or 3 channels, not {spec.channels}")
    tensor = torch.from_numpy(array).view(*spec.size, -1).permute(2, 0, 1)
    return tensor / 127.5 - 1


def initial_images(spec: InputSpec, seeds: Sequence[int], sigma: float, device, dtype=torch.float32,
                   start: Tensor | None = None) -> Tensor:
    """(N, C, H, W): ``start`` (C, H, W) in [-1, 1] (default gray, 0) plus Gaussian noise of std ``sigma``
    drawn from each seed's own generator, clamped to [-1, 1]."""
    shape = (spec.channels, *spec.size)
    base = torch.zeros(shape, dtype=torch.float64) if start is None else start.detach().double().cpu()
    if tuple(base.shape) != shape:
        raise ValueError(f"start image has shape {tuple(base.shape)}, the model needs {shape}")
    noise = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float64) for s in seeds]
    return (base + sigma * torch.stack(noise)).clamp(-1, 1).to(device=device, dtype=dtype)
