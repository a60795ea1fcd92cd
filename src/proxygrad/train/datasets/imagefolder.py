"""Any ImageFolder tree: ``ROOT/train/<class>/*`` + ``ROOT/test/<class>/*`` (or ``val/``), or ``ROOT/<class>/*``
split per seed with ``test_fraction`` of each class held out."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import Samples, dataset_root
from .config import DataConfig


def _split_folders(root: Path, test_dir: Path) -> tuple[tuple[str, ...], Samples, Samples]:
    """``ROOT/train`` and ``test_dir`` trees, labels from the training tree's classes."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    classes, index = find_classes(str(root / "train"))
    train = make_dataset(str(root / "train"), index, IMG_EXTENSIONS)
    test_classes, _ = find_classes(str(test_dir))
    unknown = sorted(set(test_classes) - set(classes))
    if unknown:
        raise ValueError(f"{test_dir} has classes missing from {root / 'train'}: {', '.join(unknown[:5])}")
    test = make_dataset(str(test_dir), index, IMG_EXTENSIONS, allow_empty=True)
    pack = lambda items: Samples([Path(p) for p, _ in items], [c for _, c in items])
    return tuple(classes), pack(train), pack(test)


def _split_by_seed(root: Path, test_fraction: float, seed: int) -> tuple[tuple[str, ...], Samples, Samples]:
    """One ``ROOT/<class>/*`` tree; per class, ``round(test_fraction * n)`` (at least 1) images held out for
    testing, drawn by ``numpy.random.default_rng(seed)`` class by class."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    classes, index = find_classes(str(root))  # FileNotFoundError naming the folder when it has no class folders
    items = make_dataset(str(root), index, IMG_EXTENSIONS)
    rng = np.random.default_rng(seed)
    train, test = Samples([], []), Samples([], [])
    for label in range(len(classes)):
        files = [Path(p) for p, c in items if c == label]
        n_test = max(1, round(test_fraction * len(files)))
        if len(files) < 2:
            raise ValueError(f"class folder {root / classes[label]} needs at least 2 images to split, has "
                             f"{len(files)}")
        order = rng.permutation(len(files))
        for target, picks in ((test, order[:n_test]), (train, order[n_test:])):
            target.files += [files[i] for i in picks]
            target.labels += [label] * len(picks)
    return tuple(classes), train, test


def imagefolder_samples(cfg: DataConfig, seed: int) -> tuple[tuple[str, ...], Samples, Samples]:
    """``ROOT/train`` + ``ROOT/test`` (or ``ROOT/val``) ImageFolder trees, or one tree split per class by seed."""
    root = dataset_root(cfg)
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        return _split_folders(root, test_dir)
    return _split_by_seed(root, cfg.test_fraction, seed)
