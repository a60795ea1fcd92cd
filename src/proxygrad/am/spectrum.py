"""Average amplitude spectra of images: the fixed magnitude template of the MACO parametrization.

Recipe of :func:`compute_spectrum`, per image file of a folder (recursive, paths sorted):
1. decoded with Pillow and converted to RGB (3 channels) or L (1 channel); a GIF gives its first frame;
2. scaled (Pillow bilinear, antialiased when shrinking) to the smallest size that covers (H, W) -- for a
   square size: the shorter side becomes H -- then centre-cropped to (H, W); values in [0, 1];
3. colour-decorrelated (:func:`proxygrad.am.colour.decorrelate`; nothing for 1 channel);
4. standardized over all its pixels and channels: zero mean, unit population std (a constant image is an error);
5. x -> |torch.fft.rfft2(x, norm="ortho")|, shape (C, H, W//2+1).
The spectrum is the mean of step 5 over the images (accumulated in float64, stored as float32).

Two spectra ship in ``am/spectra/`` (see :data:`BUNDLED`), each with its provenance in ``source``
(and a JSON copy next to it); :func:`make_bundled` regenerates them. Nothing is ever downloaded.
"""
from __future__ import annotations

import hashlib
import io
import json
import shlex
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .colour import decorrelate

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SPECTRA_DIR = Path(__file__).resolve().parent / "spectra"
BUNDLED = {"digits": {"channels": 1, "size": (32, 32)}, "natural": {"channels": 3, "size": (224, 224)}}
NATURAL_CROPS = 64  # random crops per scikit-learn sample photo
NATURAL_SEED = 0
HASH_RECIPE = "sha256 over the sorted files of (relative posix path, NUL byte, sha256 digest of the file's bytes)"


@dataclass(frozen=True, eq=False)
class Spectrum:
    """An average amplitude spectrum.

    magnitude: float32 (C, H, W//2+1), C in {1, 3}, finite, >= 0, not all zero (rfft2 layout, norm "ortho").
    size: (H, W) in pixels of the images it was computed at.
    source: provenance (plain JSON-like types): folder, images, sha256, size, channels, date, command, ...
    """

    magnitude: Tensor
    size: tuple[int, int]
    source: dict = field(default_factory=dict)

    def __post_init__(self):
        problem = _magnitude_problem(self.magnitude, self.size) or (
            None if isinstance(self.source, dict) else f"source must be a dict, got {type(self.source).__name__}")
        if problem:
            raise ValueError(f"invalid spectrum: {problem}")

    @property
    def channels(self) -> int:
        return int(self.magnitude.shape[0])


# ---- checks ----------------------------------------------------------------------------------------------------
def _size(size) -> tuple[int, int]:
    """An int or (H, W) of positive ints -> (H, W); ValueError otherwise."""
    pair = (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair):
        raise ValueError(f"size must be a positive int or (H, W) of positive ints, got {size!r}")
    return pair


def _channels(channels) -> int:
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    return channels


def _magnitude_problem(magnitude, size) -> str | None:
    """What is wrong with a (magnitude, size) pair, or None."""
    try:
        height, width = _size(size)
    except ValueError as error:
        return str(error)
    if not isinstance(magnitude, Tensor):
        return f"magnitude must be a tensor, got {type(magnitude).__name__}"
    expected = (height, width // 2 + 1)
    if magnitude.dim() != 3:
        return f"magnitude must have 3 dims (C, H, W//2+1), got shape {tuple(magnitude.shape)}"
    if magnitude.shape[0] not in (1, 3):
        return f"magnitude must have 1 or 3 channels, got {magnitude.shape[0]} (shape {tuple(magnitude.shape)})"
    if tuple(magnitude.shape[1:]) != expected:
        return (f"magnitude shape {tuple(magnitude.shape)} does not fit the recorded size {height}x{width}: "
                f"expected (C, {expected[0]}, {expected[1]}) (last dim W//2+1)")
    if not magnitude.is_floating_point():
        return f"magnitude must be real floating point, got {magnitude.dtype}"
    if not torch.isfinite(magnitude).all():
        return "magnitude has NaN or infinite values"
    if (magnitude < 0).any():
        return f"magnitude has negative values (min {magnitude.min().item():.4g})"
    if not (magnitude > 0).any():
        return "magnitude is all zero"
    return None


# ---- one image -------------------------------------------------------------------------------------------------
def image_files(folder: str | Path) -> list[Path]:
    """Image files (IMAGE_SUFFIXES, any case) under ``folder``, recursive, sorted by relative path."""
    folder = Path(folder)
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def decode_image(data: bytes, size: tuple[int, int], channels: int, name: str = "image") -> Tensor:
    """Encoded image bytes -> float64 (C, H, W) in [0, 1]: RGB or L, scaled to cover (H, W), centre-cropped.
    ValueError naming ``name`` when Pillow cannot read it."""
    from PIL import Image

    height, width = size
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB" if channels == 3 else "L")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot read image {name}: {error}") from None
    w, h = image.size
    scale = max(height / h, width / w)
    cover = (max(width, round(w * scale)), max(height, round(h * scale)))
    if cover != (w, h):
        image = image.resize(cover, Image.Resampling.BILINEAR)
    left, top = (cover[0] - width) // 2, (cover[1] - height) // 2
    array = np.asarray(image.crop((left, top, left + width, top + height)), dtype=np.float64) / 255.0
    tensor = torch.from_numpy(array)
    return tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1).contiguous()


def standardize(x: Tensor) -> Tensor:
    """x minus its mean, divided by its population std (over all elements); ValueError if x is constant."""
    centred = x - x.mean()
    std = centred.pow(2).mean().sqrt()
    if not std > 1e-12 * max(1.0, x.abs().max().item()):
        raise ValueError("the image is constant (std 0) and cannot be standardized")
    return centred / std


def image_amplitude(image: Tensor) -> Tensor:
    """An image (C, H, W) in RGB/gray values -> |rfft2(standardize(decorrelate(image)), norm="ortho")|,
    shape (C, H, W//2+1), same dtype."""
    if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be a tensor (1 or 3, H, W), got {getattr(image, 'shape', image)!r}")
    x = standardize(decorrelate(image[None])[0])
    return torch.fft.rfft2(x, norm="ortho").abs()


# ---- a folder --------------------------------------------------------------------------------------------------
def _check_readable(files: list[Path]) -> None:
    """Open each file's header with Pillow (cheap); ValueError naming the first that fails."""
    from PIL import Image

    for path in files:
        try:
            with Image.open(path):
                pass
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise ValueError(f"cannot read image {path}: {error}") from None


def compute_spectrum(folder: str | Path, size=(224, 224), channels: int = 3, max_images: int | None = None,
                     progress: bool = True) -> Spectrum:
    """The mean amplitude spectrum of the images in ``folder`` (see the module docstring for the recipe).

    Args:
        folder: a folder of image files (searched recursively; paths sorted).
        size: (H, W) or an int, pixels the images are brought to.
        channels: 3 (RGB, colour-decorrelated) or 1 (gray).
        max_images: use only the first N files of the sorted list (None: all).
        progress: show a tqdm progress bar.

    Returns: a :class:`Spectrum`, magnitude float32 (channels, H, W//2+1), with its provenance in ``source``.
    """
    size, channels = _size(size), _channels(channels)
    if max_images is not None and (not isinstance(max_images, int) or isinstance(max_images, bool)
                                   or max_images < 1):
        raise ValueError(f"max_images must be a positive int or None, got {max_images!r}")
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise ValueError(f"image folder {folder} does not exist or is not a folder")
    files = image_files(folder)[:max_images]
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    _check_readable(files)

    from tqdm import tqdm

    height, width = size
    total = torch.zeros(channels, height, width // 2 + 1, dtype=torch.float64)
    digest = hashlib.sha256()
    for path in tqdm(files, desc="spectrum", unit="image", disable=not progress):
        data = path.read_bytes()
        relative = path.relative_to(folder).as_posix()
        digest.update(relative.encode() + b"\0" + hashlib.sha256(data).digest())
        try:
            total += image_amplitude(decode_image(data, size, channels, name=str(path)))
        except ValueError as error:
            if str(path) in str(error):
                raise
            raise ValueError(f"image {path}: {error}") from None
    magnitude = (total / len(files)).to(torch.float32)
    return Spectrum(magnitude, size, _source(folder, len(files), digest.hexdigest(), size, channels, max_images))


def _source(folder: Path, images: int, sha256: str, size, channels: int, max_images) -> dict:
    import proxygrad

    command = f"proxygrad spectrum {shlex.quote(str(folder))} --size {size[0]},{size[1]} --channels {channels}"
    if max_images is not None:
        command += f" --max-images {max_images}"
    return {"folder": str(folder), "images": images, "sha256": sha256, "hash_recipe": HASH_RECIPE,
            "size": list(size), "channels": channels, "max_images": max_images,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "proxygrad": getattr(proxygrad, "__version__", "unknown"), "command": command,
            "recipe": "Pillow RGB/L; bilinear scale to cover (H, W), centre crop; [0, 1]; Lucid colour "
                      "decorrelation; per-image standardization (population std over pixels and channels); "
                      "mean over images of |rfft2(x, norm='ortho')|"}


# ---- files -----------------------------------------------------------------------------------------------------
def save_spectrum(path: str | Path, spectrum: Spectrum) -> Path:
    """Write ``spectrum`` atomically as a .pt of plain types ({"magnitude", "size", "source"}), readable by
    ``torch.load(weights_only=True)``; also returns the path."""
    from ..report.files import write_bytes

    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"expected a Spectrum, got {type(spectrum).__name__}")
    try:
        source = json.loads(json.dumps(spectrum.source))
    except (TypeError, ValueError) as error:
        raise ValueError(f"spectrum source must hold only JSON-like plain types: {error}") from None
    buffer = io.BytesIO()
    torch.save({"magnitude": spectrum.magnitude.detach().cpu().to(torch.float32).contiguous().clone(),
                "size": list(spectrum.size), "source": source}, buffer)
    return write_bytes(path, buffer.getvalue())


def load_spectrum(path_or_name: str | Path) -> Spectrum:
    """A spectrum from a file written by :func:`save_spectrum`, or a bundled one by name ("digits",
    "natural"). ValueError naming the file and what is wrong: not a file, not loadable, not a dict, missing
    key, magnitude of the wrong dims/shape, NaN or infinite, negative, all zero."""
    path = bundled_path(path_or_name) if path_or_name in BUNDLED else Path(path_or_name)
    if not path.is_file():
        raise ValueError(f"spectrum file {path}: not a file (missing, or a folder)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 -- any unpickling failure means "not a spectrum file"
        raise ValueError(f"spectrum file {path}: cannot be loaded by torch.load(weights_only=True): {error}") from None
    problem = _payload_problem(payload)
    if problem:
        raise ValueError(f"spectrum file {path}: {problem}")
    return Spectrum(payload["magnitude"].to(torch.float32), tuple(payload["size"]), payload["source"])


def _payload_problem(payload) -> str | None:
    if not isinstance(payload, dict):
        return f"expected a dict, got {type(payload).__name__}"
    missing = [key for key in ("magnitude", "size", "source") if key not in payload]
    if missing:
        return f"missing key(s) {', '.join(missing)} (has {', '.join(map(str, payload)) or 'none'})"
    if not isinstance(payload["source"], dict):
        return f"source must be a dict, got {type(payload['source']).__name__}"
    return _magnitude_problem(payload["magnitude"], payload["size"])


def magnitude_for(spectrum: Spectrum, size, channels: int) -> Tensor:
    """The spectrum's magnitude for images of ``size`` (H, W): float32 (channels, H, W//2+1), resized
    bilinearly (antialiased, align_corners=False, as Horama resizes its template) unless already that shape.
    Its overall scale is irrelevant to MACO, which standardizes the image after the inverse FFT."""
    (height, width), channels = _size(size), _channels(channels)
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"expected a Spectrum, got {type(spectrum).__name__}")
    if spectrum.channels != channels:
        raise ValueError(f"the spectrum has {spectrum.channels} channel(s) but the images have {channels}; "
                         f"use a {channels}-channel spectrum (e.g. bundled_spectrum({channels}))")
    target = (height, width // 2 + 1)
    if tuple(spectrum.magnitude.shape[1:]) == target:
        return spectrum.magnitude.clone()
    resized = F.interpolate(spectrum.magnitude[None], size=target, mode="bilinear", align_corners=False,
                            antialias=True)[0]
    return resized.clamp_(min=0)


# ---- the shipped spectra ---------------------------------------------------------------------------------------
def bundled_path(name: str) -> Path:
    """The shipped .pt file of a bundled spectrum ("digits" or "natural")."""
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled spectrum {name!r}; valid: {', '.join(BUNDLED)}")
    return SPECTRA_DIR / f"{name}.pt"


def bundled_spectrum(channels: int) -> Spectrum:
    """The shipped spectrum for ``channels``: 1 -> "digits" (32x32), 3 -> "natural" (224x224)."""
    channels = _channels(channels)
    return load_spectrum(next(name for name, spec in BUNDLED.items() if spec["channels"] == channels))


def bundled_command(name: str) -> str:
    """The command that regenerates the shipped file ``name`` (run from the repository root)."""
    bundled_path(name)
    return f"proxygrad spectrum --bundled {name} --out src/proxygrad/am/spectra/{name}.pt"


def write_bundled_images(name: str, folder: str | Path) -> str:
    """Write the source images of bundled spectrum ``name`` as PNG files into ``folder``; returns a note
    describing them. "digits": the 1347 training images of ``digits_data("train")`` (1x32x32, [-1, 1] mapped
    to 0..255). "natural": NATURAL_CROPS random square crops (side uniform in 224..shorter side, position
    uniform; numpy default_rng(NATURAL_SEED)) of each of scikit-learn's two sample photos (china, flower)."""
    from PIL import Image

    bundled_path(name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if name == "digits":
        from ..models.digits import digits_data

        images, _ = digits_data("train")
        pixels = ((images[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        for i, array in enumerate(pixels):
            Image.fromarray(array).save(folder / f"digit-{i:04d}.png", compress_level=1)
        return (f"the {len(pixels)} training images of proxygrad.models.digits.digits_data('train') "
                f"(scikit-learn's digits upsampled to 32x32), as 8-bit gray PNGs")
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    rng = np.random.default_rng(NATURAL_SEED)
    side_min = BUNDLED["natural"]["size"][0]
    for photo, filename in zip(photos.images, photos.filenames):
        stem = Path(filename).stem
        h, w = photo.shape[:2]
        for k in range(NATURAL_CROPS):
            side = int(rng.integers(side_min, min(h, w) + 1))
            top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            Image.fromarray(np.ascontiguousarray(photo[top:top + side, left:left + side])).save(
                folder / f"{stem}-{k:02d}.png", compress_level=1)
    names = ", ".join(Path(f).stem for f in photos.filenames)
    return (f"{NATURAL_CROPS} random square crops (side uniform in {side_min}..shorter side, seed "
            f"{NATURAL_SEED}) of each of scikit-learn's {len(photos.images)} sample photos ({names}); "
            f"only two scenes, so the 1/f shape is right but the fine structure reflects these two photos")


def make_bundled(name: str, progress: bool = False) -> Spectrum:
    """Recompute bundled spectrum ``name`` from its source images (written to a temporary folder and run
    through the same :func:`compute_spectrum`); ``source`` records the data and :func:`bundled_command`."""
    spec = BUNDLED.get(name)
    if spec is None:
        raise ValueError(f"unknown bundled spectrum {name!r}; valid: {', '.join(BUNDLED)}")
    with tempfile.TemporaryDirectory(prefix=f"proxygrad-spectrum-{name}-") as tmp:
        note = write_bundled_images(name, tmp)
        spectrum = compute_spectrum(tmp, size=spec["size"], channels=spec["channels"], progress=progress)
    source = {**spectrum.source, "folder": f"(temporary folder of PNGs written by "
                                           f"proxygrad.am.spectrum.write_bundled_images({name!r}, folder))",
              "data": note, "command": bundled_command(name),
              "python": f"proxygrad.am.spectrum.make_bundled({name!r})"}
    return replace(spectrum, source=source)
