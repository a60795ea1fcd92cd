"""Real images of given classes from a folder, for plausibility and FID.

Layout (torchvision's ImageFolder): ``FOLDER/<class>/<image files>``, where ``<class>`` is the class index
(``3``, ``003``) or the model's class name (``tench``). Images are read with Pillow, converted to the
model's channels (L or RGB), resized (bilinear) to its input size and mapped to [-1, 1].
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from ..am.init import load_image
from ..am.spectrum import IMAGE_SUFFIXES
from ..models.spec import InputSpec


def _class_folders(folder: Path, spec: InputSpec) -> dict[int, Path]:
    names = {name: i for i, name in enumerate(spec.class_names or [])}
    found = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        index = names.get(sub.name)
        if index is None and sub.name.isdigit():
            index = int(sub.name)
        if index is not None:
            found[index] = sub
    return found


def load_folder_images(folder: str | Path, spec: InputSpec, classes: Sequence[int],
                       per_class: int = 50) -> tuple[Tensor, Tensor]:
    """(images (M, C, H, W) in [-1, 1], labels (M,)): the first ``per_class`` images (sorted names) of each
    class in ``classes``. ValueError when the folder is missing, a class has no subfolder or no images, or
    a file cannot be read (named)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"real-image folder {folder} does not exist")
    if spec.channels not in (1, 3):
        raise ValueError(f"real images from files need a model with 1 or 3 channels, not {spec.channels}")
    found = _class_folders(folder, spec)
    missing = [c for c in classes if c not in found]
    if missing:
        raise ValueError(f"{folder} has no subfolder for classes {missing[:10]} (name them by index or class "
                         f"name; found: {[p.name for p in found.values()][:10]})")
    images, labels = [], []
    for c in classes:
        files = sorted(p for p in found[c].iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:per_class]
        if not files:
            raise ValueError(f"{found[c]} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        images += [load_image(p, spec) for p in files]
        labels += [c] * len(files)
    return torch.stack(images), torch.tensor(labels)
