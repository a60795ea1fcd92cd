"""Flowers102 in torchvision's layout ``ROOT/flowers-102/`` with ``jpg/``, ``imagelabels.mat``, ``setid.mat``.

The official training and validation sets merged (2040 training images), the test set (6149) for testing.
``download=True`` fetches it through torchvision.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import Samples, check_exist, dataset_root, first_dir
from .config import DataConfig

LAYOUT = "ROOT/flowers-102/ with jpg/image_00001.jpg, imagelabels.mat, setid.mat (torchvision's Flowers102)"


def _read_mats(base: Path) -> tuple[np.ndarray, dict[str, list[int]]]:
    """0-based labels (N,) from ``imagelabels.mat`` and the 1-based image ids of ``setid.mat``'s
    ``trnid``, ``valid`` and ``tstid``; clear errors for missing or unreadable files."""
    from scipy.io import loadmat

    mats = {}
    for name in ("imagelabels.mat", "setid.mat"):
        if not (base / name).is_file():
            raise FileNotFoundError(f"{base / name} is missing; expected layout: {LAYOUT}")
        try:
            mats[name] = loadmat(base / name, squeeze_me=True)
        except Exception as err:  # noqa: BLE001 -- scipy raises ValueError, MatReadError, ... for bad files
            raise ValueError(f"cannot read {base / name} (corrupt .mat file?): {err}") from None
    try:
        labels = np.atleast_1d(mats["imagelabels.mat"]["labels"]).astype(int) - 1
        ids = {k: np.atleast_1d(mats["setid.mat"][k]).astype(int).tolist() for k in ("trnid", "valid", "tstid")}
    except KeyError as err:
        raise ValueError(f"{base}: .mat file lacks the variable {err} (expected 'labels' and trnid/valid/tstid)") \
            from None
    return labels, ids


def _split(base: Path, labels: np.ndarray, image_ids: list[int]) -> Samples:
    """The images ``jpg/image_XXXXX.jpg`` of 1-based ``image_ids`` with their 0-based labels."""
    bad = [i for i in image_ids if not 1 <= i <= len(labels)]
    if bad:
        raise ValueError(f"{base / 'setid.mat'} names image ids {bad[:5]} outside 1..{len(labels)}")
    return Samples([base / "jpg" / f"image_{i:05d}.jpg" for i in image_ids], [int(labels[i - 1]) for i in image_ids])


def flowers102_samples(cfg: DataConfig) -> tuple[tuple[str, ...], Samples, Samples]:
    """Flowers102: official ``trnid`` + ``valid`` for training, ``tstid`` for testing (``setid.mat``)."""
    from torchvision.datasets import Flowers102

    root = dataset_root(cfg)
    if cfg.download:
        Flowers102(str(root), download=True)
    base = first_dir([root / "flowers-102", root], "flowers-102", LAYOUT)
    labels, ids = _read_mats(base)
    n_classes = int(labels.max()) + 1
    classes = tuple(Flowers102.classes[:n_classes]) if n_classes <= len(Flowers102.classes) else \
        tuple(str(c) for c in range(n_classes))
    train, test = _split(base, labels, ids["trnid"] + ids["valid"]), _split(base, labels, ids["tstid"])
    check_exist(train.files + test.files)
    return classes, train, test
