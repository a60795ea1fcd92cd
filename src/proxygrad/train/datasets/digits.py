"""The bundled scikit-learn digits (1347 training, 450 test images, 32 x 32, gray as RGB); no files needed."""
from __future__ import annotations

from .images import ImageTensors


def digits_tensors(split: str) -> ImageTensors:
    """The bundled digits (``proxygrad.models.digits_data``) as RGB in [0, 1]: (N, 3, 32, 32)."""
    from ...models.digits import digits_data

    images, labels = digits_data(split, 32)
    return ImageTensors(((images + 1) / 2).expand(-1, 3, -1, -1).contiguous(), labels)
