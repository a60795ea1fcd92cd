"""Writing results so that an interrupted run never leaves a half-written file."""
from __future__ import annotations

import io
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, payload: Any) -> Path:
    return write_bytes(path, (json.dumps(payload, indent=2, default=_jsonable) + "\n").encode())


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """An image (C, H, W) in [-1, 1] as uint8 (H, W) for C == 1 or (H, W, 3) for C == 3."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"expected an image of shape (1 or 3, H, W), got {tuple(image.shape)}")
    pixels = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = pixels.permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[2] == 1 else array


def write_png(path: str | Path, image: torch.Tensor) -> Path:
    """Save an image (C, H, W) in [-1, 1] as a PNG at its own resolution, atomically."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return write_bytes(path, buffer.getvalue())


def read_png(path: str | Path, channels: int) -> torch.Tensor:
    """A PNG written by :func:`write_png` back as (C, H, W) in [-1, 1] (``channels`` 1: gray, else RGB)."""
    with Image.open(path) as picture:
        array = np.asarray(picture.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
    tensor = torch.from_numpy(array)
    tensor = tensor.unsqueeze(0) if tensor.dim() == 2 else tensor.permute(2, 0, 1)
    return tensor / 127.5 - 1


def write_figure(path: str | Path, figure) -> Path:
    """Save a matplotlib ``Figure`` atomically (format from the suffix)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    return write_bytes(path, buffer.getvalue())


def versions() -> dict[str, str]:
    import torchvision

    import proxygrad

    return {"proxygrad": proxygrad.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def csv_text(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows (dicts) as CSV text with a header; ``columns`` defaults to the first row's keys (extra keys of
    other rows are dropped, missing ones left empty)."""
    import csv

    buffer = io.StringIO()
    if rows or columns:
        writer = csv.DictWriter(buffer, fieldnames=columns or list(rows[0]), extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: str | Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    """Write rows as CSV atomically (see :func:`csv_text`)."""
    return write_bytes(path, csv_text(rows, columns).encode())
