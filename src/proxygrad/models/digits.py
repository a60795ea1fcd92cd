"""The bundled default model and its data: a small ResNet-style ReLU CNN on scikit-learn's handwritten digits.

Data ("bundled data", available offline): ``sklearn.datasets.load_digits`` -- 1797 gray 8x8 images with 17
levels (0..16) of the digits 0-9 -- scaled to [0, 1], upsampled bilinearly to ``size`` x ``size`` and mapped
to [-1, 1] (background is -1). A fixed stratified split (``SPLIT_SEED``, 25 % test) gives 1347 training and
450 test images.

Model: :class:`DigitsResNet`, input (B, 1, 32, 32) in [-1, 1] (hence mean = std = 0.5 in its spec), logits
(B, 10) for the classes "0".."9". Weights ship in ``bundled/digits.pt`` with a provenance record
``bundled/digits.json`` written by :mod:`proxygrad.models.train_bundled`.

A second bundled model, "digits-b" (``bundled/digits_b.pt`` / ``digits_b.json``), is trained independently
(seed 1, four blocks of widths 12, 24, 48, 96) for cross-model checks such as seed 004's Table 1:
reconstruct with one model, classify the reconstruction with the other. ``REGENERATE`` and ``REGENERATE_B`` are
the ``proxygrad train-bundled`` commands that rewrite each model's weights and provenance record.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .spec import InputSpec

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
WEIGHTS_FILE = BUNDLED_DIR / "digits.pt"
PROVENANCE_FILE = BUNDLED_DIR / "digits.json"
CLASS_NAMES = tuple(str(d) for d in range(10))
SPLIT_SEED = 0
TEST_FRACTION = 0.25
SPLITS = ("train", "test", "all")
REGENERATE = "proxygrad train-bundled --seed 0 --out src/proxygrad/models/bundled"
WEIGHTS_FILE_B = BUNDLED_DIR / "digits_b.pt"
PROVENANCE_FILE_B = BUNDLED_DIR / "digits_b.json"
REGENERATE_B = ("proxygrad train-bundled --seed 1 --widths 12,24,48,96 --name digits-b "
                "--out src/proxygrad/models/bundled")
BUNDLED_MODELS = ("digits", "digits-b")


def bundled_files(name: str = "digits") -> tuple[Path, Path, str]:
    """(weights file, provenance file, command regenerating both) of the bundled model ``name``."""
    if name == "digits":
        return WEIGHTS_FILE, PROVENANCE_FILE, REGENERATE
    if name == "digits-b":
        return WEIGHTS_FILE_B, PROVENANCE_FILE_B, REGENERATE_B
    raise ValueError(f"unknown bundled model {name!r}; valid: {', '.join(BUNDLED_MODELS)}")


def digits_spec(size: int = 32) -> InputSpec:
    """Input spec of the digits model: 1 channel, ``size`` x ``size``, mean = std = 0.5, classes "0".."9"."""
    return InputSpec(channels=1, size=(size, size), mean=(0.5,), std=(0.5,), class_names=CLASS_NAMES)


# ---- data ----------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _raw_split() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (images uint8 (N, 8, 8) in 0..16, labels int64 (N,))}, the fixed stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = data.images.astype(np.uint8)
    labels = data.target.astype(np.int64)
    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(idx, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    return {
        "train": (images[train_idx], labels[train_idx]),
        "test": (images[test_idx], labels[test_idx]),
        "all": (images, labels),
    }


def upsample_digits(images: Tensor, size: int = 32) -> Tensor:
    """(N, 8, 8) or (N, 1, 8, 8) gray levels 0..16 -> float32 (N, 1, size, size) in [-1, 1], bilinear."""
    x = images.to(torch.float32)
    if x.dim() == 3:
        x = x[:, None]
    x = x / 16.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x * 2 - 1).clamp_(-1, 1)


def digits_data(split: str = "train", size: int = 32) -> tuple[Tensor, Tensor]:
    """The project's bundled data set.

    Args:
        split: "train" (1347 images), "test" (450) or "all" (1797); fixed stratified split, seed ``SPLIT_SEED``.
        size: side length in pixels of the upsampled images (8 keeps the originals).

    Returns:
        images: float32 (N, 1, size, size) in [-1, 1] (background -1, ink towards +1).
        labels: int64 (N,) in 0..9.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    images, labels = _raw_split()[split]
    return upsample_digits(torch.from_numpy(images), size), torch.from_numpy(labels.copy())


# ---- model ---------------------------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN, plus a (projected) shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class DigitsResNet(nn.Module):
    """Small ResNet for (B, 1, H, W) inputs (32 x 32 by default): a stride-1 stem conv3x3 + BN + ReLU at full
    resolution, one BasicBlock per width, each at stride 2 (32 -> 16 -> 8 -> 4), global average pooling and a
    linear head. Every rectifier is its own ``nn.ReLU`` module (7 with the default widths).

    With the default widths (16, 32, 64): about 78k parameters, logits (B, 10). Any H, W >= 1 works; the
    bundled weights are trained at 32 x 32.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be positive ints, got {widths!r}")
        self.widths = tuple(int(w) for w in widths)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, self.widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(self.widths[0]), nn.ReLU()
        )
        blocks, cin = [], self.widths[0]
        for i, w in enumerate(self.widths):
            blocks.append(BasicBlock(cin, w, stride=2))
            cin = w
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) normalized input (for the bundled weights: the [-1, 1] image itself) -> (B, classes)."""
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


# ---- bundled weights -----------------------------------------------------------------------------------------
def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_provenance(path: str | Path | None = None, regenerate: str = REGENERATE) -> dict:
    """The provenance record (dict) of the bundled weights (``PROVENANCE_FILE`` when ``path`` is None);
    FileNotFoundError / ValueError naming the file and the ``regenerate`` command."""
    path = Path(PROVENANCE_FILE if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(f"provenance record {path} is missing; regenerate it with `{regenerate}`")
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"provenance record {path} is not valid JSON ({err}); "
                         f"regenerate with `{regenerate}`") from None
    if not isinstance(record, dict) or "sha256" not in record:
        raise ValueError(f"provenance record {path} has no 'sha256' entry; regenerate with `{regenerate}`")
    return record


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """A state dict from ``path`` with ``torch.load(weights_only=True)``; clear errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt zip, truncated pickle, unsupported globals, ...
        raise ValueError(f"cannot read weights file {path}: {type(err).__name__}: {err}") from err
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"weights file {path} does not hold a state dict (a dict of tensors)")
    return state


def load_digits_model(weights: str | Path | None = None, *, verify: bool = True,
                      name: str = "digits") -> DigitsResNet:
    """A digits model in eval mode on the CPU.

    Args:
        weights: None for the bundled weights of ``name`` (checked against the sha256 in its provenance record
            when ``verify``), or the path of a state dict written by ``train-bundled``.
        verify: check the bundled file's sha256 against its provenance record.
        name: the bundled model, one of ``BUNDLED_MODELS`` ("digits", "digits-b"); ignored with ``weights``.
    """
    record: dict = {}
    if weights is None:
        path, record_path, regenerate = bundled_files(name)
        if not path.is_file():
            raise FileNotFoundError(f"bundled weights {path} are missing; regenerate them with `{regenerate}`")
        record = read_provenance(record_path, regenerate)
        if verify:
            digest = sha256_file(path)
            if digest != record["sha256"]:
                raise ValueError(
                    f"bundled weights {path} do not match their provenance record {record_path} "
                    f"(sha256 {digest[:12]}... != {str(record['sha256'])[:12]}...); regenerate both with `{regenerate}`"
                )
    else:
        path = Path(weights)
    state = load_state_dict_file(path)
    widths = _widths_from_state(state) or tuple(record.get("widths", (16, 32, 64)))
    model = DigitsResNet(widths=widths, num_classes=10)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"weights file {path} does not match the digits architecture (widths {widths}): "
                         f"{_short(err)}") from None
    return model.eval()


def _widths_from_state(state: dict[str, Tensor]) -> tuple[int, ...] | None:
    """Widths of a DigitsResNet state dict (from its blocks' conv1 weights), or None if it is not one."""
    widths = []
    i = 0
    while f"layers.{i}.conv1.weight" in state:
        widths.append(int(state[f"layers.{i}.conv1.weight"].shape[0]))
        i += 1
    return tuple(widths) or None


def _short(err: Exception, limit: int = 600) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + " ..."
