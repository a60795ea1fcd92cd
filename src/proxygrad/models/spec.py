"""What a model expects to see: channels, size, normalization and class names.

proxygrad works on images in [-1, 1] per channel (the paper's convention). Each model declares, through an
:class:`InputSpec`, how that domain maps to its own input: first to [0, 1] pixel units, then the usual
``(p - mean) / std`` with torchvision-style per-channel ``mean`` and ``std`` (given in [0, 1] pixel units).
"""
from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_size(size: Any) -> tuple[int, int]:
    """(H, W) from an int, a pair, or a (C, H, W) triple; ValueError otherwise."""
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size)
    if len(size) == 3:
        size = size[1:]
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"size must be a positive int or a pair (H, W) of positive ints, got {size!r}")
    return size  # type: ignore[return-value]


def _floats(values: Any, name: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{name} must hold finite numbers, got {values!r}")
    return out


def closest(key: str, names: list[str] | tuple[str, ...], n: int = 5) -> list[str]:
    """Up to ``n`` entries of ``names`` closest to ``key`` (difflib; case-insensitive)."""
    lowered = {}
    for name in names:
        lowered.setdefault(str(name).lower(), str(name))
    hits = difflib.get_close_matches(key.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]


@dataclass(frozen=True)
class InputSpec:
    """Input contract of one model.

    Attributes:
        channels: number of input channels C (1 for gray, 3 for RGB).
        size: (H, W) in pixels, the size the model is meant to see.
        mean, std: per-channel normalization in [0, 1] pixel units (length C); the model sees
            ``(p - mean) / std`` for pixels ``p`` in [0, 1].
        class_names: one name per output unit, or None when unknown.
        num_classes: number of output units, or None when unknown (filled from ``class_names`` when given).
    """

    channels: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] | None = None
    num_classes: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.channels, int) or self.channels < 1:
            raise ValueError(f"channels must be a positive int, got {self.channels!r}")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # frozen dataclass
        set_("size", _as_size(self.size))
        set_("mean", _floats(self.mean, "mean"))
        set_("std", _floats(self.std, "std"))
        for name in ("mean", "std"):
            if len(getattr(self, name)) != self.channels:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {self.channels} channels")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be > 0, got {self.std}")
        if self.class_names is not None:
            set_("class_names", tuple(str(c) for c in self.class_names))
            if self.num_classes is None:
                set_("num_classes", len(self.class_names))
            elif self.num_classes != len(self.class_names):
                raise ValueError(f"num_classes={self.num_classes} but {len(self.class_names)} class names")
        if self.num_classes is not None and (not isinstance(self.num_classes, int) or self.num_classes < 1):
            raise ValueError(f"num_classes must be a positive int or None, got {self.num_classes!r}")

    # ---- normalization -------------------------------------------------------------------------------------
    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() < 3 or x.shape[-3] != self.channels:
            raise ValueError(f"expected images of shape (B, {self.channels}, H, W), got {tuple(x.shape)}")
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(-1, 1, 1)
        return mean, std

    def to_model_input(self, x: Tensor) -> Tensor:
        """Map images in [-1, 1], shape (B, C, H, W), to the model's input ``((x + 1) / 2 - mean) / std``.

        Differentiable; the result has the device and dtype of ``x``. No resizing is done.
        """
        mean, std = self._stats(x)
        return ((x + 1) * 0.5 - mean) / std

    def from_model_input(self, y: Tensor) -> Tensor:
        """Inverse of :meth:`to_model_input`: model input (B, C, H, W) back to the [-1, 1] domain."""
        mean, std = self._stats(y)
        return (y * std + mean) * 2 - 1

    # ---- classes -------------------------------------------------------------------------------------------
    def class_name(self, index: int) -> str:
        """Name of output unit ``index`` (its number as a string when names are unknown)."""
        index = self.class_index(index)
        return self.class_names[index] if self.class_names is not None else str(index)

    def class_index(self, key: int | str) -> int:
        """Output index for ``key``: an index (int or a string of digits) or a class name.

        Names are matched exactly first, then case-insensitively when that is unambiguous. A name wins over an
        index: for the digits model "3" is the class named "3". ValueError lists the valid range and the
        closest names.
        """
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise ValueError(f"class must be an index (int) or a class name (str), got {key!r}")
        if isinstance(key, str):
            found = self._index_by_name(key)
            if found is not None:
                return found
            if not key.strip().lstrip("-").isdigit():
                raise ValueError(self._unknown_name_message(key))
            key = int(key.strip())
        if key < 0 or (self.num_classes is not None and key >= self.num_classes):
            valid = f"0..{self.num_classes - 1}" if self.num_classes is not None else ">= 0"
            raise ValueError(f"class index {key} is out of range: valid indices are {valid}")
        return key

    def _index_by_name(self, key: str) -> int | None:
        if self.class_names is None:
            return None
        if key in self.class_names:
            return self.class_names.index(key)
        folded = [i for i, name in enumerate(self.class_names) if name.lower() == key.strip().lower()]
        return folded[0] if len(folded) == 1 else None

    def _unknown_name_message(self, key: str) -> str:
        if self.class_names is None:
            n = f"0..{self.num_classes - 1}" if self.num_classes else "ints >= 0"
            return f"unknown class {key!r}: this model has no class names, give an index ({n})"
        names = self.class_names
        if len(names) <= 30:
            return f"unknown class {key!r}; valid names: {', '.join(names)} (or an index 0..{len(names) - 1})"
        near = closest(key, names)
        hint = f"closest names: {', '.join(near)}" if near else f"e.g. {', '.join(names[:5])}, ..."
        return f"unknown class {key!r} among {len(names)} class names; {hint} (or an index 0..{len(names) - 1})"

    # ---- misc ----------------------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> InputSpec:
        """A copy with some fields changed (e.g. ``spec.replace(size=(64, 64))``)."""
        data = asdict(self)
        if "class_names" in changes and "num_classes" not in changes:
            data["num_classes"] = None
        data.update(changes)
        return InputSpec(**data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (lists instead of tuples)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        """Inverse of :meth:`to_dict`; unknown keys are a ValueError."""
        fields = {"channels", "size", "mean", "std", "class_names", "num_classes"}
        extra = set(data) - fields
        if extra:
            raise ValueError(f"unknown InputSpec fields {sorted(extra)}; valid: {sorted(fields)}")
        return cls(**data)

    @classmethod
    def imagenet(cls, size: int | tuple[int, int] = 224, class_names=None, num_classes: int | None = None):
        """RGB, ImageNet mean/std (torchvision's defaults)."""
        return cls(3, _as_size(size), IMAGENET_MEAN, IMAGENET_STD, class_names, num_classes)


class Normalized(nn.Module):
    """``model`` behind its input normalization: ``forward`` takes images in [-1, 1], shape (B, C, H, W).

    ``.model`` is the original network (unchanged, shared, not copied); ``.spec`` its :class:`InputSpec`.
    """

    def __init__(self, model: nn.Module, spec: InputSpec):
        super().__init__()
        if not isinstance(spec, InputSpec):
            raise TypeError(f"spec must be an InputSpec, got {type(spec).__name__}")
        self.model = model
        self.spec = spec

    def forward(self, x: Tensor) -> Tensor:
        return self.model(self.spec.to_model_input(x))

    def extra_repr(self) -> str:
        return f"channels={self.spec.channels}, size={self.spec.size}"
