"""CUB-200-2011 in its own files under ``ROOT/CUB_200_2011/``.

``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``, ``classes.txt`` and ``images/`` (5994
training, 5794 test images, the official split). torchvision offers no download.
"""
from __future__ import annotations

from pathlib import Path

from .common import Samples, check_exist, dataset_root, first_dir
from .config import DataConfig

CUB_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
LAYOUT = f"ROOT/CUB_200_2011/ with {', '.join(CUB_FILES)} and images/<class>/<file>.jpg"


def _read_table(path: Path, columns: int) -> list[list[str]]:
    """Rows of a whitespace-separated text file with ``columns`` fields (the last one may hold spaces)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (CUB-200-2011 needs {', '.join(CUB_FILES)} and images/)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=columns - 1)
        if len(fields) != columns:
            raise ValueError(f"{path}:{number}: expected {columns} fields, got {line!r}")
        rows.append(fields)
    return rows


def cub200_samples(cfg: DataConfig) -> tuple[tuple[str, ...], Samples, Samples]:
    """CUB-200-2011 with its official split (``train_test_split.txt``: 1 = training)."""
    root = dataset_root(cfg)
    base = first_dir([root / "CUB_200_2011", root], "CUB_200_2011", LAYOUT)
    if not (base / "images.txt").is_file() and not (base / "images").is_dir():
        raise FileNotFoundError(f"{base} does not hold CUB-200-2011 (no images.txt, no images/); expected {LAYOUT}")
    try:
        paths = {i: p for i, p in _read_table(base / "images.txt", 2)}
        labels = {i: int(c) - 1 for i, c in _read_table(base / "image_class_labels.txt", 2)}
        is_train = {i: t.strip() == "1" for i, t in _read_table(base / "train_test_split.txt", 2)}
        names = {int(c) - 1: n.strip() for c, n in _read_table(base / "classes.txt", 2)}
    except ValueError as err:
        raise ValueError(f"corrupt CUB-200-2011 index file: {err}") from None
    classes = tuple(names[c] for c in sorted(names))
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{base / 'classes.txt'}: class ids must run from 1 to {len(names)}")
    train, test = Samples([], []), Samples([], [])
    for image_id, rel in paths.items():
        for table, name in ((labels, "image_class_labels.txt"), (is_train, "train_test_split.txt")):
            if image_id not in table:
                raise ValueError(f"{base / name} has no entry for image id {image_id} ({rel})")
        if not 0 <= labels[image_id] < len(classes):
            raise ValueError(f"{base / 'image_class_labels.txt'}: image {image_id} has class "
                             f"{labels[image_id] + 1}, outside 1..{len(classes)}")
        target = train if is_train[image_id] else test
        target.files.append(base / "images" / rel.strip())
        target.labels.append(labels[image_id])
    check_exist(train.files + test.files)
    return classes, train, test
