"""Caltech101 in torchvision's layout ``ROOT/caltech101/101_ObjectCategories/<class>/image_XXXX.jpg``.

The 101 classes without ``BACKGROUND_Google``; per seed, ``train_per_class`` (20) training and
``test_per_class`` (10) test images drawn at random from each class. ``download=True`` fetches it through
torchvision.
"""
from __future__ import annotations

import numpy as np

from .common import Samples, dataset_root, first_dir, image_files
from .config import DataConfig

LAYOUT = "ROOT/caltech101/101_ObjectCategories/<class>/image_0001.jpg (torchvision's Caltech101)"


def caltech101_samples(cfg: DataConfig, seed: int) -> tuple[tuple[str, ...], Samples, Samples]:
    """Caltech101 (101 classes, no background): per class ``train_per_class`` + ``test_per_class`` images drawn
    without replacement by ``numpy.random.default_rng(seed)``, class by class in sorted order."""
    root = dataset_root(cfg)
    if cfg.download:
        from torchvision.datasets import Caltech101

        Caltech101(str(root), download=True)
    folder = first_dir([root / "caltech101" / "101_ObjectCategories", root / "101_ObjectCategories"]
                       + ([root] if root.name == "101_ObjectCategories" else []), "101_ObjectCategories", LAYOUT)
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name != "BACKGROUND_Google"))
    if not classes:
        raise FileNotFoundError(f"{folder} holds no class folders; expected layout: {LAYOUT}")
    rng = np.random.default_rng(seed)
    need = cfg.train_per_class + cfg.test_per_class
    train, test = Samples([], []), Samples([], [])
    for label, name in enumerate(classes):
        files = image_files(folder / name)
        if len(files) < need:
            raise ValueError(f"class folder {folder / name} has {len(files)} images, fewer than the "
                             f"{cfg.train_per_class} + {cfg.test_per_class} the split draws")
        order = rng.permutation(len(files))
        for target, picks in ((train, order[:cfg.train_per_class]), (test, order[cfg.train_per_class:need])):
            target.files += [files[i] for i in picks]
            target.labels += [label] * len(picks)
    return classes, train, test
